import { Migration } from '@mikro-orm/migrations';

/**
 * snapshot_verifications (DESIGN.md §12): one row per restore drill that judged a snapshot,
 * VERIFIED or FAILED, with what the drill measured (restore_seconds: the download and the
 * database import) and, for a failed one, the problem in the customer's words. Keyed by the
 * customer and the restic id, not by a catalog row: a legacy daily snapshot has one catalog row
 * per customer, and a drill's history outlives a catalog resync. The audit log learns two
 * actions: a drill asked for (verify_requested) and a repository's integrity check
 * (repository_checked).
 */
export class Migration20261202180000_snapshot_verifications extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table snapshot_verifications (
      id int unsigned not null auto_increment primary key,
      customer_id int unsigned not null,
      snapshot_id char(64) not null,
      source enum('manual','daily','safety') not null,
      job_id int unsigned null,
      status enum('verified','failed') not null,
      verified_at datetime(3) not null,
      restore_seconds double null,
      files int unsigned null,
      bytes bigint unsigned null,
      tables int unsigned null,
      problem text null,
      key snapshot_verifications_customer_snapshot (customer_id, snapshot_id, verified_at),
      key snapshot_verifications_failed (status, verified_at),
      constraint snapshot_verifications_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`alter table audit_events modify action enum('sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked','verify_requested','repository_checked') not null`);
  }

  override async down(): Promise<void> {
    this.addSql(
      `delete from audit_events where action in ('verify_requested','repository_checked')`,
    );
    this.addSql(`alter table audit_events modify action enum('sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked') not null`);
    this.addSql('drop table if exists snapshot_verifications');
  }
}
