import type { ISnapshotVerification } from '../../snapshots/verification.entity.js';
import { recordVerification } from '../../snapshots/verifications.js';
import { failureOf, succeeded } from './failure.js';
import type { Task } from './task.js';

/**
 * VERIFY (DESIGN.md §12): scripts/customer-verify restores the snapshot into a sandbox beside
 * the site and a scratch database, checks every file and table, and gives its verdict, which
 * is recorded in snapshot_verifications. A backup that failed its drill is an alert, and the
 * job is FAILED with the problem in the customer's words; a drill that could not judge
 * (storage busy, interrupted) is FAILED without a verdict. Drills wait in the daily lane and
 * give way to the customer's own backup or restore. The verdict is announced with the job's end
 * (backup.verified with job.completed, verification.failed with job.failed, and then the
 * customer's drill_failed e-mail), in the same transaction.
 */
export const verifyTask: Task = {
  kind: 'verify',
  script: 'customer-verify',
  args(job) {
    if (!job.snapshotId) throw new Error(`verify job ${job.id} has no snapshot id`);
    return [String(job.customer.id), job.snapshotId, job.source, '--job', String(job.id)];
  },
  timeoutMs: (config) => config.BACKUPS_VERIFY_TIMEOUT_SECONDS * 1000,
  lane: () => 'daily',
  phases: {
    VERIFYING: [0, 0.03],
    CHECKING_SPACE: [0.03, 0.05],
    DOWNLOADING: [0.05, 0.7],
    CHECKING_FILES: [0.7, 0.75],
    IMPORTING_DATABASE: [0.75, 0.95],
    CHECKING_DATABASE: [0.95, 0.98],
    CLEANING_UP: [0.98, 1],
  },
  async onEvent(event, ctx) {
    if (event.type !== 'verification') return;
    const { job } = ctx;
    if (event.snapshot !== job.snapshotId) {
      ctx.log.warn({ snapshot: event.snapshot }, 'a verdict on another snapshot: ignored');
      return;
    }
    const verdict = await recordVerification(ctx.em, {
      customerId: ctx.ref.customerId,
      source: job.source,
      jobId: job.id,
      event,
    });
    ctx.log.info(
      { status: event.status, restoreSeconds: event.restoreSeconds, problem: event.problem },
      'drill verdict',
    );
    const data = { verification: verificationPayload(verdict) };
    // Verified: the job is done; removing the sandbox is the script's housekeeping.
    if (event.status === 'verified') {
      ctx.announce({ event: 'backup.verified', data });
      await ctx.complete();
    }
    if (event.status === 'failed') {
      ctx.announce({ event: 'verification.failed', data });
      await ctx.alert({
        type: 'verification_failed',
        customerId: ctx.ref.customerId,
        snapshotId: event.snapshot,
        jobId: job.id,
        problem: event.problem ?? 'The backup failed its check.',
      });
    }
  },
  outcome(result) {
    if (succeeded(result)) return { status: 'completed' };
    return failureOf(result, 'VERIFY_FAILED');
  },
  recovery: { script: 'customer-verify', args: (customerId) => ['--recover', String(customerId)] },
  yieldsToSiteJobs: true,
};

/** What a webhook receiver is told of a drill's verdict (the figures Snapshot.verification has). */
function verificationPayload(v: ISnapshotVerification) {
  return {
    snapshotId: v.snapshotId,
    source: v.source.toUpperCase(),
    status: v.status.toUpperCase(),
    verifiedAt: new Date(v.verifiedAt).toISOString(),
    restoreSeconds: v.restoreSeconds == null ? null : Number(v.restoreSeconds),
    files: v.files ?? null,
    bytes: v.bytes == null ? null : Number(v.bytes),
    tables: v.tables ?? null,
    problem: v.problem ?? null,
  };
}
