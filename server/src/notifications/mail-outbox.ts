import type { EntityManager } from '@mikro-orm/mariadb';
import type { ICustomer } from '../customers/customer.entity.js';
import { BackupJob, type IBackupJob } from '../jobs/job.entity.js';
import type { WebhookEvent } from '../webhooks/webhook-events.js';
import type { MailKind } from './mail-kinds.js';
import { renderMail } from './mail-templates.js';
import { notificationSettings } from './notification-settings.js';

/** Which e-mail, if any, a job's event is. */
async function mailKindOf(
  em: EntityManager,
  job: IBackupJob,
  event: WebhookEvent,
): Promise<MailKind | null> {
  // A backup that failed its drill (not a drill that could not judge: that is job.failed alone).
  if (event === 'verification.failed') return 'drill_failed';
  if (job.kind === 'restore' && event === 'job.completed') return 'restore_completed';
  if (job.kind === 'restore' && event === 'job.failed') return 'restore_failed';
  if (job.kind === 'backup' && job.source === 'daily' && event === 'job.failed') {
    // The second failure in a row (not every one after it): the daily backups before it.
    const earlier = await em.getConnection().execute<{ status: string }[]>(
      `select status from backup_jobs
         where customer_id = ? and kind = 'backup' and source = 'daily' and id < ?
           and status in ('completed', 'failed')
         order by id desc limit 2`,
      [job.customer.id, job.id],
      'all',
      em.getTransactionContext(),
    );
    const [previous, before] = earlier.map((r) => r.status);
    return previous === 'failed' && before !== 'failed' ? 'daily_failed_twice' : null;
  }
  return null;
}

/**
 * Records the e-mail of `kind` about job `jobId` in `em`'s transaction, when the customer has
 * that e-mail switched on. The worker of the customer's node sends it (mail-deliverer.ts).
 */
async function recordMail(em: EntityManager, jobId: number, kind: MailKind): Promise<boolean> {
  const job = await em.findOneOrFail(BackupJob, jobId, { populate: ['customer'] });
  const customer = job.customer as ICustomer;
  if (!(await notificationSettings(em, customer.id))[kind]) return false;
  const mail = renderMail(kind, customer.name, job);
  const now = new Date();
  await em.getConnection().execute(
    `insert into email_messages (customer_id, node, kind, job_id, to_address, subject, text_body,
       html_body, status, attempts, next_attempt_at, created_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
    [
      customer.id,
      customer.host,
      kind,
      job.id,
      customer.email,
      mail.subject,
      mail.text,
      mail.html,
      now,
      now,
    ],
    'run',
    em.getTransactionContext(),
  );
  return true;
}

/** The job store's hook: the e-mail a job's event means, in the change's transaction. */
export async function recordJobMail(
  em: EntityManager,
  jobId: number,
  event: WebhookEvent,
): Promise<void> {
  const job = await em.findOneOrFail(BackupJob, jobId, { populate: ['customer'] });
  const kind = await mailKindOf(em, job, event);
  if (kind) await recordMail(em, jobId, kind);
}
