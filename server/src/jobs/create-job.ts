import { type EntityManager, UniqueConstraintViolationException } from '@mikro-orm/mariadb';
import type { ICustomer } from '../customers/customer.entity.js';
import {
  ACTIVE_STATUSES,
  BackupJob,
  type IBackupJob,
  type JobKind,
  type JobScope,
  type RequesterKind,
  type SnapshotSource,
} from './job.entity.js';
import { JobInProgressError } from './job-errors.js';

export interface NewJob {
  customer: ICustomer;
  kind: JobKind;
  scope: JobScope;
  source: SnapshotSource;
  snapshotId?: string | null;
  label?: string | null;
  requestedByKind: RequesterKind;
  requestedById?: string | null;
}

/**
 * Inserts a PENDING job. The UNIQUE index on backup_jobs.active_customer makes the database
 * refuse a second active job for the customer; that refusal becomes a JobInProgressError.
 */
export async function insertPendingJob(em: EntityManager, input: NewJob): Promise<IBackupJob> {
  const fork = em.fork();
  const job = fork.create(BackupJob, {
    customer: input.customer.id,
    kind: input.kind,
    scope: input.scope,
    source: input.source,
    snapshotId: input.snapshotId ?? null,
    label: input.label ?? null,
    requestedByKind: input.requestedByKind,
    requestedById: input.requestedById ?? null,
    status: 'pending',
  });
  try {
    await fork.flush();
    return job;
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) {
      const active = await em.fork().findOne(BackupJob, {
        customer: input.customer.id,
        status: { $in: [...ACTIVE_STATUSES] },
      });
      throw new JobInProgressError(active);
    }
    throw error;
  }
}

/**
 * A PENDING job that no queue holds (Redis unreachable when it was enqueued) becomes FAILED
 * with QUEUE_UNAVAILABLE: left PENDING it would refuse the customer every job until a restart.
 */
export async function failUnqueuedJob(
  em: EntityManager,
  jobId: number,
  errorMessage: string,
): Promise<void> {
  await em
    .fork()
    .nativeUpdate(
      BackupJob,
      { id: jobId, status: 'pending' },
      { status: 'failed', finishedAt: new Date(), errorCode: 'QUEUE_UNAVAILABLE', errorMessage },
    );
}
