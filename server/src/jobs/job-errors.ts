import type { IBackupJob } from './job.entity.js';

/** A customer already has a pending or running job; carries that job. */
export class JobInProgressError extends Error {
  readonly code = 'JOB_IN_PROGRESS';
  constructor(readonly job: IBackupJob | null) {
    super('Another backup or restore is already in progress for this site. Wait for it to finish.');
    this.name = 'JobInProgressError';
  }
}
