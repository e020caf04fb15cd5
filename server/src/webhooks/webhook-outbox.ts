import type { EntityManager } from '@mikro-orm/mariadb';
import type { ICustomer } from '../customers/customer.entity.js';
import { BackupJob, type IBackupJob } from '../jobs/job.entity.js';
import type { WebhookEvent } from './webhook-events.js';

/** An outbox row just written: its id, and the node whose worker delivers it. */
export interface QueuedMessage {
  id: number;
  node: string;
}

/**
 * What a receiver is told of a job: ids, kind, status, times, and the error a customer would
 * read. Never the operators' error detail, and nothing of any other customer.
 */
export function jobPayload(job: IBackupJob, customerId: number) {
  const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
  return {
    id: String(job.id),
    customerId: String(customerId),
    kind: job.kind.toUpperCase(),
    scope: job.scope.toUpperCase(),
    source: job.source.toUpperCase(),
    status: job.status.toUpperCase(),
    label: job.label ?? null,
    snapshotId: job.snapshotId ?? null,
    createdAt: iso(job.createdAt),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    errorCode: job.errorCode ?? null,
    errorMessage: job.errorMessage ?? null,
  };
}

/**
 * Records `event` of job `jobId` for every hook that asked for it (the customer's own and the
 * all-customers hooks) in `em`'s transaction: call it in the transaction that changes the job
 * row, so the event is stored exactly when the change is. Returns the rows to queue.
 * `extra` is merged into the payload's data (a download's url, a verification's result).
 */
export async function recordJobEvent(
  em: EntityManager,
  jobId: number,
  event: WebhookEvent,
  extra: Record<string, unknown> = {},
): Promise<QueuedMessage[]> {
  const job = await em.findOneOrFail(BackupJob, jobId, { populate: ['customer'] });
  const customer = job.customer as ICustomer;
  const now = new Date();
  const payload = JSON.stringify({
    type: event,
    timestamp: now.toISOString(),
    data: { job: jobPayload(job, customer.id), ...extra },
  });
  const rows = await em.getConnection().execute<{ id: number }[]>(
    `insert into webhook_messages
       (webhook_id, node, event, job_id, payload, status, attempts, next_attempt_at, created_at)
     select w.id, ?, ?, ?, ?, 'pending', 0, ?, ? from webhooks w
     where (w.customer_id = ? or w.customer_id is null) and find_in_set(?, w.events)
     returning id`,
    [customer.host, event, job.id, payload, now, now, customer.id, event],
    'all',
    em.getTransactionContext(),
  );
  return rows.map((row) => ({ id: Number(row.id), node: customer.host }));
}
