import { Migration } from '@mikro-orm/migrations';

const EARLIER = `'sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked','verify_requested','repository_checked',
      'staff_created','webhook_created','webhook_deleted'`;

/** A customer moved to another node (customer:move) is in the audit log: who, from, to, when. */
export class Migration20261203110000_customer_move_audit extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table audit_events modify action enum(${EARLIER},
      'customer_moved') not null`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from audit_events where action = 'customer_moved'`);
    this.addSql(`alter table audit_events modify action enum(${EARLIER}) not null`);
  }
}
