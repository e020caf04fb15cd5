import { scriptScope } from '../../snapshots/snapshot-scope.js';
import { applyRetention, recordJobSnapshot } from './catalog-events.js';
import { failureOf, succeeded } from './failure.js';
import type { Task } from './task.js';

/**
 * BACKUP: scripts/customer-backup dumps the database and/or sends the files to restic; the
 * snapshot it made goes into the catalog and onto the row, and the job is COMPLETED when the
 * script says so (its retention comes after) or, at the latest, when it ends well. A backup
 * without a snapshot is no backup.
 */
export const backupTask: Task = {
  kind: 'backup',
  script: 'customer-backup',
  args(job) {
    const args = [String(job.customer.id), scriptScope(job.scope), '--job', String(job.id)];
    args.push('--source', job.source === 'daily' ? 'daily' : 'manual');
    if (job.label) args.push('--label', job.label);
    return args;
  },
  timeoutMs: (config) => config.BACKUPS_BACKUP_TIMEOUT_SECONDS * 1000,
  // The night's backups wait in the daily lane, behind nothing a customer asked for.
  lane: (job) => (job.source === 'daily' ? 'daily' : 'jobs'),
  phases: {
    PREPARING: [0, 0.02],
    DUMPING_DATABASE: [0.02, 0.15],
    UPLOADING: [0.15, 0.95],
    APPLYING_RETENTION: [0.95, 0.99],
  },
  async onEvent(event, ctx) {
    const { job } = ctx;
    switch (event.type) {
      case 'snapshot': {
        await recordJobSnapshot(ctx, event, job.source);
        if (event.kind === 'result') await ctx.write({ snapshotId: event.id });
        break;
      }
      case 'completed':
        if (!job.snapshotId) {
          ctx.log.warn('the script reported completion without a snapshot: waiting for its end');
          break;
        }
        await ctx.complete();
        // A new manual backup is indexed at once, so "Browse" and "What changed" are ready;
        // a customer already indexing another snapshot keeps that one (no second job).
        if (job.source === 'manual' && ctx.settings.indexNewBackups) {
          await ctx
            .queueFollowUp({
              kind: 'index',
              scope: job.scope,
              source: 'manual',
              snapshotId: job.snapshotId,
            })
            .catch((error: unknown) =>
              ctx.log.warn({ err: error }, 'the new backup could not be indexed'),
            );
        }
        break;
      case 'retention':
        await applyRetention(ctx, event, ctx.job.source);
        break;
      default:
        break;
    }
  },
  outcome(result, ctx) {
    if (succeeded(result) && ctx.job.snapshotId) return { status: 'completed' };
    return failureOf(result, 'BACKUP_FAILED');
  },
};
