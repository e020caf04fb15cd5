import { Migration } from '@mikro-orm/migrations';

/**
 * error_detail: the failing script's last log lines, for operators (admin tokens, the CLI),
 * never shown to the customer. settled_at: when the job's script had ended, housekeeping
 * included (a restore's undo point is stored after its COMPLETED): a subscription to the job
 * ends once it is terminal and settled.
 */
export class Migration20261202000000_job_detail extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table backup_jobs
      add column error_detail text null after error_message,
      add column settled_at datetime(3) null after finished_at`);
    this.addSql(
      `update backup_jobs set settled_at = finished_at where status in ('completed', 'failed', 'cancelled')`,
    );
  }

  override async down(): Promise<void> {
    this.addSql('alter table backup_jobs drop column error_detail, drop column settled_at');
  }
}
