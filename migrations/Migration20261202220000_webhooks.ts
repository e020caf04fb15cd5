import { Migration } from '@mikro-orm/migrations';

/**
 * Webhooks (DESIGN.md §14). `webhooks`: one customer's hook, or every customer's (customer_id
 * null, made by an admin token); the signing secret is stored encrypted (AES-256-GCM, key from
 * the configuration), since the Standard Webhooks signature needs it in the clear.
 * `webhook_messages` is the outbox: one row per hook per event, written in the same transaction
 * as the job row's change, so an event is never lost between the two; `node` is the worker that
 * delivers it. `webhook_attempts`: every attempt, for the delivery log.
 * E-mail notifications: `notification_settings` holds a customer's switches (no row: all on);
 * `email_messages` is their outbox, written like the webhooks' and sent by the node's worker.
 * Single sign-on: `customer_identities` links an OpenID provider's (issuer, sub) to a customer.
 */
export class Migration20261202220000_webhooks extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table webhooks (
      id int unsigned not null auto_increment primary key,
      customer_id int unsigned null,
      admin_owned tinyint(1) not null default 0,
      url varchar(2000) not null,
      events varchar(500) not null,
      secret_encrypted varchar(200) not null,
      created_by_kind varchar(16) not null,
      created_by_id varchar(64) null,
      created_at datetime(3) not null,
      key webhooks_customer (customer_id),
      constraint webhooks_customer_fk foreign key (customer_id) references customers (id)
        on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`create table webhook_messages (
      id bigint unsigned not null auto_increment primary key,
      webhook_id int unsigned not null,
      node varchar(63) not null,
      event varchar(40) not null,
      job_id int unsigned null,
      payload mediumtext not null,
      status enum('pending','delivered','failed') not null default 'pending',
      attempts int unsigned not null default 0,
      next_attempt_at datetime(3) null,
      locked_until datetime(3) null,
      last_status_code smallint unsigned null,
      created_at datetime(3) not null,
      finished_at datetime(3) null,
      key webhook_messages_due (node, status, next_attempt_at),
      key webhook_messages_hook (webhook_id, id),
      constraint webhook_messages_hook_fk foreign key (webhook_id) references webhooks (id)
        on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`create table webhook_attempts (
      id bigint unsigned not null auto_increment primary key,
      message_id bigint unsigned not null,
      attempt int unsigned not null,
      status_code smallint unsigned null,
      error varchar(300) null,
      duration_ms int unsigned not null,
      attempted_at datetime(3) not null,
      unique key webhook_attempts_one (message_id, attempt),
      constraint webhook_attempts_message_fk foreign key (message_id)
        references webhook_messages (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`create table customer_identities (
      issuer varchar(255) not null,
      subject varchar(255) not null,
      customer_id int unsigned not null,
      created_at datetime(3) not null,
      primary key (issuer, subject),
      key customer_identities_customer (customer_id),
      constraint customer_identities_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`create table notification_settings (
      customer_id int unsigned not null primary key,
      restore_completed tinyint(1) not null default 1,
      restore_failed tinyint(1) not null default 1,
      daily_failed_twice tinyint(1) not null default 1,
      drill_failed tinyint(1) not null default 1,
      updated_at datetime(3) not null,
      constraint notification_settings_customer_fk foreign key (customer_id)
        references customers (id) on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`create table email_messages (
      id bigint unsigned not null auto_increment primary key,
      customer_id int unsigned not null,
      node varchar(63) not null,
      kind enum('restore_completed','restore_failed','daily_failed_twice','drill_failed') not null,
      job_id int unsigned null,
      to_address varchar(254) not null,
      subject varchar(200) not null,
      text_body text not null,
      html_body text not null,
      status enum('pending','sent','failed') not null default 'pending',
      attempts int unsigned not null default 0,
      next_attempt_at datetime(3) null,
      locked_until datetime(3) null,
      last_error varchar(300) null,
      created_at datetime(3) not null,
      sent_at datetime(3) null,
      key email_messages_due (node, status, next_attempt_at),
      key email_messages_customer (customer_id, id),
      constraint email_messages_customer_fk foreign key (customer_id) references customers (id)
        on delete cascade
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists email_messages');
    this.addSql('drop table if exists notification_settings');
    this.addSql('drop table if exists customer_identities');
    this.addSql('drop table if exists webhook_attempts');
    this.addSql('drop table if exists webhook_messages');
    this.addSql('drop table if exists webhooks');
  }
}
