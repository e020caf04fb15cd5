import { Migration } from '@mikro-orm/migrations';

/**
 * The job kinds of DESIGN.md §10-12 (index, download, verify) and their one-active rule: BACKUP
 * and RESTORE touch the live site, and at most one of them is active per customer
 * (active_customer, as before, now for those two kinds only); INDEX, DOWNLOAD and VERIFY only
 * read the repository, and each kind has its own limit of one active job per customer
 * (active_reader = "<customer>:<kind>"). Both are enforced by UNIQUE indexes on generated
 * columns: the database refuses a second active job, whatever the application does.
 */
export class Migration20261202010000_job_kinds extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table backup_jobs drop index backup_jobs_one_active_per_customer`);
    this.addSql(`alter table backup_jobs
      modify kind enum('backup','restore','index','download','verify') not null,
      modify active_customer int unsigned as
        (case when status in ('pending','running') and kind in ('backup','restore')
         then customer_id else null end) virtual,
      add column active_reader varchar(24) as
        (case when status in ('pending','running') and kind in ('index','download','verify')
         then concat(customer_id, ':', kind) else null end) virtual after active_customer`);
    this.addSql(`alter table backup_jobs
      add unique key backup_jobs_one_active_per_customer (active_customer),
      add unique key backup_jobs_one_active_reader_per_kind (active_reader)`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from backup_jobs where kind in ('index','download','verify')`);
    this.addSql(`alter table backup_jobs
      drop index backup_jobs_one_active_reader_per_kind,
      drop index backup_jobs_one_active_per_customer`);
    this.addSql(`alter table backup_jobs
      drop column active_reader,
      modify active_customer int unsigned as
        (case when status in ('pending','running') then customer_id else null end) virtual,
      modify kind enum('backup','restore') not null`);
    this.addSql(`alter table backup_jobs
      add unique key backup_jobs_one_active_per_customer (active_customer)`);
  }
}
