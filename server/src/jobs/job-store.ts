import {
  type EntityManager,
  type MikroORM,
  UniqueConstraintViolationException,
} from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import type { Redis } from 'ioredis';
import { Customer, type ICustomer } from '../customers/customer.entity.js';
import { recordJobMail } from '../notifications/mail-outbox.js';
import type { SnapshotSource } from '../snapshots/snapshot-scope.js';
import type { WebhookEvent } from '../webhooks/webhook-events.js';
import { type QueuedMessage, recordJobEvent } from '../webhooks/webhook-outbox.js';
import type { DeliveryQueues } from '../webhooks/webhook-queue.js';
import { retryWhileDisconnected } from './db-retry.js';
import {
  ACTIVE_STATUSES,
  BackupJob,
  type IBackupJob,
  type JobKind,
  type JobScope,
  type JobStatus,
  type RequesterKind,
  SITE_KINDS,
} from './job.entity.js';
import { JobInProgressError } from './job-errors.js';
import { publishJobChanged } from './job-events.js';
import { enqueueJob, laneOf, type QueuedJob, type QueueLane } from './job-queue.js';

export interface NewJob {
  customer: ICustomer;
  kind: JobKind;
  scope: JobScope;
  source: SnapshotSource;
  snapshotId?: string | null;
  label?: string | null;
  /** A partial restore's paths and tables. */
  paths?: string[] | null;
  tables?: string[] | null;
  requestedByKind: RequesterKind;
  requestedById?: string | null;
  /** Rows that belong with the job (a download's request), written in the job's transaction. */
  alongside?: (em: EntityManager, job: IBackupJob) => void;
}

/** A job as the store's writes name it: its row and the customer whose topics hear of it. */
export interface JobRef {
  id: number;
  customerId: number;
}

/** What the worker writes while a job runs. */
export type RunningFields = Partial<
  Pick<
    IBackupJob,
    | 'phase'
    | 'progress'
    | 'bytesDone'
    | 'bytesTotal'
    | 'etaSeconds'
    | 'snapshotId'
    | 'safetySnapshotId'
  >
>;

/**
 * An event of the job's own kind (a drill's verdict, a download ready), recorded for the
 * webhooks, with the e-mail it means, in the same transaction as the job's end.
 */
export interface Announcement {
  event: WebhookEvent;
  /** Merged into the payload's data beside the job (a verification, a download). */
  data?: Record<string, unknown>;
}

export interface Failure {
  code: string;
  /** For the customer. */
  message: string;
  /** For operators only: the script's last log lines (passwords removed here). */
  detail?: string | null;
}

/** The producer queues of the nodes (the api's, the CLI's, the schedule's). */
export interface JobQueues {
  for(host: string, lane: QueueLane): BeeQueue<QueuedJob>;
}

/** A job whose row exists but that no queue holds: its row is FAILED, QUEUE_UNAVAILABLE. */
export class QueueUnavailableError extends Error {
  constructor(
    readonly job: IBackupJob,
    override readonly cause: unknown,
  ) {
    super('The job could not be queued. Try again in a few minutes.');
    this.name = 'QueueUnavailableError';
  }
}

export interface JobStoreDeps {
  orm: Pick<MikroORM, 'em'>;
  redis: Redis;
  /** The Redis prefix of queues and job topics. */
  prefix: string;
  /** Only the writers that create or cancel jobs need them. */
  queues?: JobQueues;
  /**
   * Where webhook deliveries are queued once their outbox rows are committed. Without it (or
   * when Redis fails) the delivering worker's sweep finds them: an event is never lost.
   */
  deliveries?: DeliveryQueues;
  /**
   * How long the writes that start and end a job (claim, complete, fail, hand back, undo
   * point, settle) keep trying while the database cannot be reached (db-retry.ts); default
   * 10 minutes, 0: not retried.
   */
  retryWritesForMs?: number;
  /** Told of each such write that is tried again. */
  onWriteRetry?: (error: unknown, attempt: number) => void;
}

const UNQUEUED_MESSAGE = 'The job could not be queued. Try again in a few minutes.';

/** Lines that could carry a secret are never kept in errorDetail, whoever printed them. */
function scrub(detail: string | null | undefined): string | null {
  if (!detail) return null;
  const lines = detail
    .split('\n')
    .map((line) =>
      /password\s*=|identified\s+by|RESTIC_PASSWORD|AWS_SECRET/i.test(line)
        ? '[a line that names a password was removed]'
        : line,
    );
  return lines.join('\n').trim().slice(-4000) || null;
}

/**
 * The only writer of backup_jobs rows (DESIGN.md §2, "one job store"). Every change of a row
 * is published on its job's and its customer's topics in the same call, so whoever changes a
 * job (the api, the worker, the daily schedule, the CLI), open pages and integrators see it.
 * Each write names the status it expects, so a late write never lands on a row that moved on.
 */
export class JobStore {
  constructor(private readonly deps: JobStoreDeps) {}

  private em(): EntityManager {
    return this.deps.orm.em.fork() as EntityManager;
  }

  /** A write that starts or ends a job: tried again while the database is away. */
  private lasting<T>(write: () => Promise<T>): Promise<T> {
    const forMs = this.deps.retryWritesForMs ?? 600_000;
    if (forMs <= 0) return write();
    return retryWhileDisconnected(write, {
      forMs,
      onRetry: this.deps.onWriteRetry,
      probe: () => this.em().getConnection().execute('select 1'),
    });
  }

  private publish(ref: JobRef): Promise<void> {
    return publishJobChanged(this.deps.redis, this.deps.prefix, ref);
  }

  /**
   * Writes `data` where the row is in one of `from`; publishes when it changed. With `event`,
   * the webhooks' outbox rows of that event, and the customer's e-mail it means, are written
   * in the same transaction (an outbox: the change and its announcements are committed
   * together or not at all), then the webhooks are queued.
   */
  private async transition(
    ref: JobRef,
    from: readonly JobStatus[],
    data: Partial<IBackupJob>,
    event?: WebhookEvent,
    announcements: readonly Announcement[] = [],
  ): Promise<boolean> {
    const where = { id: ref.id, status: { $in: [...from] } };
    if (!event) {
      const changed = (await this.em().nativeUpdate(BackupJob, where, data)) > 0;
      if (changed) await this.publish(ref);
      return changed;
    }
    const messages = await this.em().transactional(async (em) => {
      if ((await em.nativeUpdate(BackupJob, where, data)) === 0) return null;
      const queued: QueuedMessage[] = [];
      const all: readonly Announcement[] = [{ event }, ...announcements];
      for (const { event: name, data: extra } of all) {
        await recordJobMail(em, ref.id, name);
        queued.push(...(await recordJobEvent(em, ref.id, name, extra)));
      }
      return queued;
    });
    if (messages === null) return false;
    await this.publish(ref);
    await this.queueDeliveries(messages);
    return true;
  }

  private async queueDeliveries(messages: QueuedMessage[]): Promise<void> {
    if (messages.length === 0 || !this.deps.deliveries) return;
    // A delivery that cannot be queued now is queued by its worker's sweep.
    await this.deps.deliveries.enqueue(messages).catch(() => undefined);
  }

  private queue(host: string, lane: QueueLane): BeeQueue<QueuedJob> {
    if (!this.deps.queues) throw new Error('this job store has no queues');
    return this.deps.queues.for(host, lane);
  }

  /**
   * A new PENDING job, queued and published. The UNIQUE index on active_customer makes the
   * database refuse a second active job for the customer: a JobInProgressError carrying that
   * job. A job that cannot be queued (Redis unreachable) is FAILED at once, QUEUE_UNAVAILABLE,
   * and QueueUnavailableError is thrown: left PENDING it would refuse the customer every job.
   */
  async create(input: NewJob, unqueuedMessage = UNQUEUED_MESSAGE): Promise<IBackupJob> {
    let job: IBackupJob;
    try {
      job = await this.insert(input);
    } catch (error) {
      // The active job ended between the refusal and the look-up: try once more.
      if (!(error instanceof JobInProgressError) || error.job) throw error;
      job = await this.insert(input);
    }
    const ref = { id: job.id, customerId: input.customer.id };
    try {
      // The customer's node as it is now that the row exists: a customer:move committed since
      // `input.customer` was read has queued the customer's pending jobs, but not this one.
      await enqueueJob(this.queue(await this.hostOf(input.customer), laneOf(job)), job.id);
    } catch (error) {
      await this.transition(
        ref,
        ['pending'],
        {
          status: 'failed',
          finishedAt: new Date(),
          settledAt: new Date(),
          errorCode: 'QUEUE_UNAVAILABLE',
          errorMessage: unqueuedMessage,
          errorDetail: scrub(error instanceof Error ? error.message : String(error)),
        },
        'job.failed',
      );
      Object.assign(job, { status: 'failed', errorCode: 'QUEUE_UNAVAILABLE' });
      throw new QueueUnavailableError(job, error);
    }
    await this.publish(ref);
    return job;
  }

  private async hostOf(customer: ICustomer): Promise<string> {
    const row = await this.em().findOne(Customer, customer.id, { fields: ['host'] });
    return row?.host ?? customer.host;
  }

  private async insert(input: NewJob): Promise<IBackupJob> {
    const em = this.em();
    const job = em.create(BackupJob, {
      customer: input.customer.id,
      kind: input.kind,
      scope: input.scope,
      source: input.source,
      snapshotId: input.snapshotId ?? null,
      label: input.label ?? null,
      paths: input.paths ?? null,
      tables: input.tables ?? null,
      requestedByKind: input.requestedByKind,
      requestedById: input.requestedById ?? null,
      status: 'pending',
    });
    input.alongside?.(em, job);
    try {
      await em.flush();
      return job;
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        // The job in the way: a backup or restore for one of those, one of its kind otherwise.
        const site = (SITE_KINDS as readonly string[]).includes(input.kind);
        const active = await this.em().findOne(BackupJob, {
          customer: input.customer.id,
          status: { $in: [...ACTIVE_STATUSES] },
          kind: site ? { $in: [...SITE_KINDS] } : input.kind,
        });
        throw new JobInProgressError(active);
      }
      throw error;
    }
  }

  /**
   * A failed or cancelled job asked for again: a new job like it (same customer, kind, scope,
   * source, snapshot, label), created exactly as any other.
   */
  async retry(
    jobId: number,
    requester: Pick<NewJob, 'requestedByKind' | 'requestedById'>,
  ): Promise<{ old: IBackupJob; job: IBackupJob }> {
    const old = await this.em().findOne(BackupJob, jobId, { populate: ['customer'] });
    if (!old) throw new JobNotFoundError(jobId);
    if (old.status !== 'failed' && old.status !== 'cancelled') {
      throw new JobStateError(old, 'only failed or cancelled jobs can be retried');
    }
    const job = await this.create({
      customer: old.customer as ICustomer,
      kind: old.kind,
      scope: old.scope,
      source: old.source,
      snapshotId: old.snapshotId,
      label: old.label,
      paths: old.paths ?? null,
      tables: old.tables ?? null,
      ...requester,
    });
    return { old, job };
  }

  /**
   * Cancels a job that has not started (the worker skips rows that are no longer PENDING) and
   * takes it off its queue. `cancelled` false: the job had started or ended; `job` is it now.
   */
  async cancel(jobId: number): Promise<{ job: IBackupJob; cancelled: boolean }> {
    const found = await this.em().findOne(BackupJob, jobId, { populate: ['customer'] });
    if (!found) throw new JobNotFoundError(jobId);
    const customer = found.customer as ICustomer;
    const cancelled = await this.transition({ id: jobId, customerId: customer.id }, ['pending'], {
      status: 'cancelled',
      finishedAt: new Date(),
      settledAt: new Date(),
    });
    if (cancelled) {
      await this.queue(customer.host, laneOf(found))
        .removeJob(String(jobId))
        .catch(() => undefined);
    }
    const job = await this.em().findOneOrFail(BackupJob, jobId);
    return { job, cancelled };
  }

  /**
   * A moved customer's pending jobs (customer:move has changed their node): off the old node's
   * queues, onto the new node's, each in its lane. Enqueueing is idempotent (the row id is the
   * queue id); an entry the old queue still holds under another id (a drill's later run) is
   * skipped by the old node's worker (claim). The rows do not change.
   */
  async requeue(
    jobs: readonly Pick<IBackupJob, 'id' | 'kind' | 'source'>[],
    from: string,
    to: string,
  ): Promise<void> {
    for (const job of jobs) {
      const lane = laneOf(job);
      await this.queue(from, lane).removeJob(String(job.id));
      await enqueueJob(this.queue(to, lane), job.id);
    }
  }

  /**
   * The worker takes a PENDING job: RUNNING. Null when it is no longer PENDING, or when its
   * customer no longer lives on `node` (moved by customer:move: a queue entry left on the old
   * node's queue is skipped there; the move queued the job on the new node). The customer's
   * node is read in the same statement, so a move committed before it is always seen.
   */
  async claim(jobId: number, node?: string): Promise<IBackupJob | null> {
    return this.lasting(() => this.claimOnce(jobId, node));
  }

  private async claimOnce(jobId: number, node?: string): Promise<IBackupJob | null> {
    const em = this.em();
    const messages = await em.transactional(async (tem) => {
      // One statement whose WHERE tests the row's own status (two entries of one job never
      // both claim it) and the customer's node.
      const qb = tem
        .createQueryBuilder(BackupJob)
        .update({ status: 'running', startedAt: new Date(), heartbeatAt: new Date(), progress: 0 })
        .where({ id: jobId, status: 'pending' });
      if (node !== undefined) {
        qb.andWhere('backup_jobs.customer_id in (select c.id from customers c where c.host = ?)', [
          node,
        ]);
      }
      const claimed = (await qb.execute('run')).affectedRows;
      return claimed === 0 ? null : recordJobEvent(tem, jobId, 'job.started');
    });
    if (messages === null) return null;
    const job = await em.findOneOrFail(BackupJob, jobId, { populate: ['customer'] });
    await this.publish({ id: jobId, customerId: job.customer.id });
    await this.queueDeliveries(messages);
    return job;
  }

  /** The worker is alive and at the job (not published: nobody watches heartbeats). */
  async heartbeat(jobId: number): Promise<void> {
    await this.em().nativeUpdate(
      BackupJob,
      { id: jobId, status: 'running' },
      { heartbeatAt: new Date() },
    );
  }

  /** Phase, progress, the snapshot made: only while the job is RUNNING. */
  progress(ref: JobRef, fields: RunningFields): Promise<boolean> {
    return this.transition(ref, ['running'], fields);
  }

  /**
   * The job is done (its script may still be at its housekeeping: see settle). `announcements`
   * (its task's events, e.g. backup.verified) are recorded with job.completed.
   */
  complete(
    ref: JobRef,
    fields: RunningFields = {},
    announcements: readonly Announcement[] = [],
  ): Promise<boolean> {
    return this.lasting(() =>
      this.transition(
        ref,
        ['running'],
        {
          progress: 1,
          phase: null,
          etaSeconds: null,
          ...fields,
          status: 'completed',
          finishedAt: new Date(),
        },
        'job.completed',
        announcements,
      ),
    );
  }

  /** The job failed; `announcements` (e.g. verification.failed) are recorded with job.failed. */
  fail(
    ref: JobRef,
    failure: Failure,
    announcements: readonly Announcement[] = [],
  ): Promise<boolean> {
    return this.lasting(() =>
      this.transition(
        ref,
        ['running'],
        {
          status: 'failed',
          phase: null,
          etaSeconds: null,
          errorCode: failure.code,
          errorMessage: failure.message,
          errorDetail: scrub(failure.detail),
          finishedAt: new Date(),
          settledAt: new Date(),
        },
        'job.failed',
        announcements,
      ),
    );
  }

  /** The worker stops before the job's script ran, or after it rolled back: PENDING again. */
  handBack(ref: JobRef): Promise<boolean> {
    return this.lasting(() =>
      this.transition(ref, ['running'], {
        status: 'pending',
        phase: null,
        progress: 0,
        bytesDone: null,
        bytesTotal: null,
        etaSeconds: null,
        startedAt: null,
        heartbeatAt: null,
      }),
    );
  }

  /**
   * PENDING again, and queued to run in `delayMs` (a drill that gave way to the customer's own
   * backup or restore). The queue entry has an id of its own: the one the job ran from is still
   * the worker's; whichever entry comes first claims the row, the other finds it taken.
   */
  async handBackLater(
    ref: JobRef,
    job: Pick<IBackupJob, 'kind' | 'source'> & { customer: Pick<ICustomer, 'host'> },
    delayMs: number,
  ): Promise<boolean> {
    if (!(await this.handBack(ref))) return false;
    await this.queue(job.customer.host, laneOf(job))
      .createJob({ jobId: ref.id })
      .setId(`${ref.id}:later:${Date.now()}`)
      .delayUntil(Date.now() + delayMs)
      .save();
    return true;
  }

  /**
   * A restore's undo point, stored after the switch-over (the job may be COMPLETED already).
   * Only a restore of that customer is touched (recovery reads both from a snapshot's tags).
   */
  async attachUndoPoint(ref: JobRef, snapshotId: string): Promise<boolean> {
    const changed = await this.lasting(() =>
      this.em().nativeUpdate(
        BackupJob,
        { id: ref.id, customer: ref.customerId, kind: 'restore' },
        { safetySnapshotId: snapshotId },
      ),
    );
    if (changed > 0) await this.publish(ref);
    return changed > 0;
  }

  /**
   * The job's script has ended, housekeeping included: nothing more will change on the row
   * (an undo point the repository did not take yet is attached later by the recovery sweep).
   */
  async settle(ref: JobRef): Promise<void> {
    const changed = await this.lasting(() =>
      this.em().nativeUpdate(
        BackupJob,
        { id: ref.id, settledAt: null, status: { $nin: [...ACTIVE_STATUSES] } },
        { settledAt: new Date() },
      ),
    );
    if (changed > 0) await this.publish(ref);
  }

  // --- reads the worker and the CLI need ------------------------------------------------

  /** The node's jobs in these statuses, oldest first, with their customers. */
  onNode(node: string, status: JobStatus): Promise<IBackupJob[]> {
    return this.em().find(
      BackupJob,
      { status, customer: { host: node } },
      { populate: ['customer'], orderBy: { id: 'asc' } },
    );
  }

  /** Whether the customer has a backup or restore PENDING or RUNNING. */
  async hasActiveSiteJob(customerId: number): Promise<boolean> {
    const n = await this.em().count(BackupJob, {
      customer: customerId,
      kind: { $in: [...SITE_KINDS] },
      status: { $in: [...ACTIVE_STATUSES] },
    });
    return n > 0;
  }

  /** Restores of the node that ended but whose script never said it was done. */
  unsettledOnNode(node: string): Promise<IBackupJob[]> {
    return this.em().find(
      BackupJob,
      { settledAt: null, status: { $nin: [...ACTIVE_STATUSES] }, customer: { host: node } },
      { populate: ['customer'] },
    );
  }
}

export class JobNotFoundError extends Error {
  constructor(readonly jobId: number) {
    super(`no job ${jobId}`);
    this.name = 'JobNotFoundError';
  }
}

export class JobStateError extends Error {
  constructor(
    readonly job: IBackupJob,
    why: string,
  ) {
    super(`job ${job.id} is ${job.status}; ${why}`);
    this.name = 'JobStateError';
  }
}
