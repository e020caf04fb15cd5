import { Migration } from '@mikro-orm/migrations';

/**
 * Support staff of the hosting company: accounts made by the ops CLI (staff:add) that sign in
 * to the web app with rights over every customer. A session belongs to a customer or to a
 * staff account, never both (the CHECK), and goes with its account.
 */
export class Migration20261202200000_staff_accounts extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table staff_accounts (
      id int unsigned not null auto_increment primary key,
      email varchar(254) not null,
      name varchar(200) not null,
      password_hash varchar(255) not null,
      created_at datetime not null,
      unique key staff_accounts_email_unique (email)
    ) default character set utf8mb4 collate utf8mb4_unicode_ci engine = InnoDB`);
    this.addSql(`alter table sessions
      modify customer_id int unsigned null,
      add column staff_id int unsigned null after customer_id,
      add constraint sessions_staff_fk foreign key (staff_id)
        references staff_accounts (id) on delete cascade,
      add constraint sessions_one_owner check ((customer_id is null) <> (staff_id is null))`);
    this.addSql(`alter table audit_events modify action enum('sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked','verify_requested','repository_checked',
      'staff_created') not null`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from audit_events where action = 'staff_created'`);
    this.addSql(`alter table audit_events modify action enum('sign_in','sign_in_failed','sign_out',
      'backup_requested','restore_requested','job_cancelled','job_retried','token_created',
      'token_revoked','customer_created','download_requested','download_created',
      'download_fetched','download_revoked','verify_requested','repository_checked') not null`);
    this.addSql('delete from sessions where staff_id is not null');
    this.addSql(`alter table sessions
      drop constraint sessions_one_owner,
      drop foreign key sessions_staff_fk,
      drop column staff_id,
      modify customer_id int unsigned not null`);
    this.addSql('drop table staff_accounts');
  }
}
