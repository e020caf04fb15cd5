import { Migration } from '@mikro-orm/migrations';

/**
 * Downloads (DESIGN.md §11): one row per DOWNLOAD job, written by the api when it is asked for
 * (what to put in the archive) and by the worker when the archive is built (file, size,
 * sha256, expiry). The link's token is never stored: token_hash is the SHA-256 of the token,
 * and the token itself is an HMAC of token_nonce under a key only the api holds, so a reader of
 * this table can neither fetch an archive nor forge a link. Audit events for links created and
 * fetched.
 */
export class Migration20261202170000_downloads extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table downloads (
      id int unsigned not null auto_increment primary key,
      job_id int unsigned not null,
      customer_id int unsigned not null,
      node varchar(63) not null,
      snapshot_id char(64) not null,
      source enum('manual','daily','safety') not null,
      paths json null,
      with_files tinyint(1) not null,
      with_database tinyint(1) not null,
      format enum('zip','tar_gz') not null,
      token_nonce char(64) not null,
      token_hash char(64) not null,
      status enum('building','ready','failed') not null default 'building',
      file_name varchar(100) null,
      download_name varchar(200) null,
      size_bytes bigint unsigned null,
      sha256 char(64) null,
      created_at datetime(3) not null,
      ready_at datetime(3) null,
      expires_at datetime(3) null,
      revoked_at datetime(3) null,
      file_removed_at datetime(3) null,
      fetch_count int unsigned not null default 0,
      unique key downloads_job (job_id),
      unique key downloads_token_hash (token_hash),
      key downloads_customer_created (customer_id, created_at),
      key downloads_node_expires (node, expires_at),
      constraint downloads_job_fk foreign key (job_id) references backup_jobs (id) on delete cascade,
      constraint downloads_customer_fk foreign key (customer_id) references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`alter table audit_events modify action enum('sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked') not null`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from audit_events where action like 'download\\_%'`);
    this.addSql(`alter table audit_events modify action enum('sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created') not null`);
    this.addSql('drop table if exists downloads');
  }
}
