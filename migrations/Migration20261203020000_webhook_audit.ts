import { Migration } from '@mikro-orm/migrations';

const EARLIER = `'sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked','verify_requested','repository_checked',
      'staff_created'`;

/** Webhooks made and deleted are in the audit log (DESIGN.md §14): who, which target, when. */
export class Migration20261203020000_webhook_audit extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table audit_events modify action enum(${EARLIER},
      'webhook_created','webhook_deleted') not null`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from audit_events where action in ('webhook_created', 'webhook_deleted')`);
    this.addSql(`alter table audit_events modify action enum(${EARLIER}) not null`);
  }
}
