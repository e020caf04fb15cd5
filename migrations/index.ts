import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126000000_initial } from './Migration20261126000000_initial.js';
import { Migration20261202000000_job_detail } from './Migration20261202000000_job_detail.js';
import { Migration20261202010000_job_kinds } from './Migration20261202010000_job_kinds.js';
import { Migration20261202160000_snapshot_index } from './Migration20261202160000_snapshot_index.js';
import { Migration20261202170000_downloads } from './Migration20261202170000_downloads.js';
import { Migration20261202180000_snapshot_verifications } from './Migration20261202180000_snapshot_verifications.js';
import { Migration20261202200000_staff_accounts } from './Migration20261202200000_staff_accounts.js';
import { Migration20261202220000_webhooks } from './Migration20261202220000_webhooks.js';
import { Migration20261203020000_webhook_audit } from './Migration20261203020000_webhook_audit.js';
import { Migration20261203110000_customer_move_audit } from './Migration20261203110000_customer_move_audit.js';

/** Every migration, in order. Listed explicitly so the same code runs from TS and from JS. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261126000000_initial', class: Migration20261126000000_initial },
  { name: 'Migration20261202000000_job_detail', class: Migration20261202000000_job_detail },
  { name: 'Migration20261202010000_job_kinds', class: Migration20261202010000_job_kinds },
  { name: 'Migration20261202160000_snapshot_index', class: Migration20261202160000_snapshot_index },
  { name: 'Migration20261202170000_downloads', class: Migration20261202170000_downloads },
  {
    name: 'Migration20261202180000_snapshot_verifications',
    class: Migration20261202180000_snapshot_verifications,
  },
  {
    name: 'Migration20261202200000_staff_accounts',
    class: Migration20261202200000_staff_accounts,
  },
  { name: 'Migration20261202220000_webhooks', class: Migration20261202220000_webhooks },
  {
    name: 'Migration20261203020000_webhook_audit',
    class: Migration20261203020000_webhook_audit,
  },
  {
    name: 'Migration20261203110000_customer_move_audit',
    class: Migration20261203110000_customer_move_audit,
  },
];
