import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126000000_initial } from './Migration20261126000000_initial.js';
import { Migration20261202000000_job_detail } from './Migration20261202000000_job_detail.js';
import { Migration20261202010000_job_kinds } from './Migration20261202010000_job_kinds.js';
import { Migration20261202170000_downloads } from './Migration20261202170000_downloads.js';

/** Every migration, in order. Listed explicitly so the same code runs from TS and from JS. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261126000000_initial', class: Migration20261126000000_initial },
  { name: 'Migration20261202000000_job_detail', class: Migration20261202000000_job_detail },
  { name: 'Migration20261202010000_job_kinds', class: Migration20261202010000_job_kinds },
  { name: 'Migration20261202170000_downloads', class: Migration20261202170000_downloads },
];
