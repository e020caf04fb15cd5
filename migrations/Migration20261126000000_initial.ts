import { Migration } from '@mikro-orm/migrations';

export class Migration20261126000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table customers (
      id int unsigned not null auto_increment primary key,
      email varchar(254) not null,
      name varchar(200) not null,
      password_hash varchar(255) not null,
      host varchar(63) not null,
      site_layout enum('wordpress','volumes/files') not null default 'wordpress',
      created_at datetime not null,
      unique key customers_email_unique (email),
      key customers_host_index (host)
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);

    // active_customer is the customer id while the job is pending or running, NULL otherwise.
    // NULLs never collide in a UNIQUE index, so the database itself refuses a second
    // active job for one customer, whatever the application does.
    this.addSql(`create table backup_jobs (
      id int unsigned not null auto_increment primary key,
      customer_id int unsigned not null,
      kind enum('backup','restore') not null,
      scope enum('database','files','both') not null,
      source enum('manual','daily','safety') not null,
      snapshot_id varchar(64) null,
      safety_snapshot_id varchar(64) null,
      label varchar(200) null,
      status enum('pending','running','completed','failed','cancelled') not null default 'pending',
      phase varchar(40) null,
      progress double not null default 0,
      bytes_done bigint null,
      bytes_total bigint null,
      eta_seconds int null,
      error_code varchar(64) null,
      error_message text null,
      requested_by_kind enum('customer','token','admin','operator','schedule') not null,
      requested_by_id varchar(64) null,
      active_customer int unsigned as
        (case when status in ('pending','running') then customer_id else null end) virtual,
      created_at datetime(3) not null,
      started_at datetime(3) null,
      finished_at datetime(3) null,
      heartbeat_at datetime(3) null,
      unique key backup_jobs_one_active_per_customer (active_customer),
      key backup_jobs_customer_created (customer_id, created_at),
      key backup_jobs_status (status),
      constraint backup_jobs_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);

    this.addSql(`create table snapshots (
      id int unsigned not null auto_increment primary key,
      source enum('manual','daily','safety') not null,
      snapshot_id char(64) not null,
      short_id varchar(16) not null,
      customer_id int unsigned not null,
      time datetime(3) not null,
      scope enum('database','files','both') not null,
      label varchar(200) null,
      size_bytes bigint null,
      paths json not null,
      tags json not null,
      created_by_job_id int unsigned null,
      synced_at datetime not null,
      unique key snapshots_snapshot_customer_unique (snapshot_id, customer_id),
      key snapshots_customer_source_time (customer_id, source, time),
      constraint snapshots_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);

    this.addSql(`create table api_tokens (
      id int unsigned not null auto_increment primary key,
      name varchar(100) not null,
      token_hash char(64) not null,
      prefix varchar(16) not null,
      customer_id int unsigned null,
      is_admin tinyint(1) not null default 0,
      created_at datetime not null,
      last_used_at datetime null,
      revoked_at datetime null,
      unique key api_tokens_token_hash_unique (token_hash),
      constraint api_tokens_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);

    this.addSql(`create table sessions (
      id char(64) not null primary key,
      customer_id int unsigned not null,
      created_at datetime not null,
      expires_at datetime not null,
      ip varchar(45) null,
      user_agent varchar(255) null,
      key sessions_expires_at (expires_at),
      constraint sessions_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);

    this.addSql(`create table audit_events (
      id bigint unsigned not null auto_increment primary key,
      at datetime(3) not null,
      action enum('sign_in','sign_in_failed','sign_out','backup_requested','restore_requested',
        'job_cancelled','job_retried','token_created','token_revoked','customer_created') not null,
      actor_kind varchar(20) not null,
      actor_id varchar(64) null,
      customer_id int unsigned null,
      target_id varchar(64) null,
      ip varchar(45) null,
      details json null,
      key audit_events_customer_at (customer_id, at)
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists audit_events');
    this.addSql('drop table if exists sessions');
    this.addSql('drop table if exists api_tokens');
    this.addSql('drop table if exists snapshots');
    this.addSql('drop table if exists backup_jobs');
    this.addSql('drop table if exists customers');
  }
}
