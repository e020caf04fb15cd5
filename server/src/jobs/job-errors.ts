import { AppError } from '../graphql/errors.js';
import type { IBackupJob } from './job.entity.js';

/** A customer already has a pending or running job; carries that job. */
export class JobInProgressError extends Error {
  readonly code = 'JOB_IN_PROGRESS';
  constructor(readonly job: IBackupJob | null) {
    super(
      job?.kind === 'verify'
        ? 'This site already has a check of its backups waiting or running.'
        : 'Another backup or restore is already in progress for this site. Wait for it to finish.',
    );
    this.name = 'JobInProgressError';
  }
}

export class ConfirmationMismatchError extends AppError {
  readonly code = 'CONFIRMATION_MISMATCH';
  constructor() {
    super('Type RESTORE to confirm the restore.');
    this.name = 'ConfirmationMismatchError';
  }
}

export class NotCancellableError extends AppError {
  readonly code = 'NOT_CANCELLABLE';
  constructor(readonly job: IBackupJob) {
    super('Only a job that has not started yet can be cancelled.');
    this.name = 'NotCancellableError';
  }
}
