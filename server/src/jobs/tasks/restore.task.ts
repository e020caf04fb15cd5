import { scriptScope } from '../../snapshots/snapshot-scope.js';
import { applyRetention, recordJobSnapshot } from './catalog-events.js';
import { failureOf, succeeded } from './failure.js';
import type { Task } from './task.js';

/**
 * RESTORE: scripts/customer-restore stages the snapshot beside the site and switches it over;
 * the job is COMPLETED at the switch-over (the script's `completed`: the site is the backup
 * and open). Its undo point (what the switch-over replaced) is stored after that, and is put
 * on the finished row; a subscription to the job ends once it is there or the script ended
 * (JobStore.settle).
 */
export const restoreTask: Task = {
  kind: 'restore',
  script: 'customer-restore',
  args(job) {
    if (!job.snapshotId) throw new Error(`restore job ${job.id} has no snapshot id`);
    return [
      String(job.customer.id),
      job.snapshotId,
      scriptScope(job.scope),
      job.source,
      '--job',
      String(job.id),
    ];
  },
  // A partial restore (DESIGN.md §10): paths NUL-separated (a name may hold any byte but NUL
  // and /), tables one a line (the api refuses names with line breaks).
  argFiles(job) {
    const files: { flag: string; content: Buffer }[] = [];
    if (job.paths?.length) {
      files.push({
        flag: '--paths-from',
        content: Buffer.concat(job.paths.map((p) => Buffer.from(`${p}\0`, 'utf8'))),
      });
    }
    if (job.tables?.length) {
      files.push({
        flag: '--tables-from',
        content: Buffer.from(`${job.tables.join('\n')}\n`, 'utf8'),
      });
    }
    return files;
  },
  timeoutMs: (config) => config.BACKUPS_RESTORE_TIMEOUT_SECONDS * 1000,
  lane: () => 'jobs',
  phases: {
    VERIFYING: [0, 0.03],
    CHECKING_SPACE: [0.03, 0.05],
    // the safety repository's check (the undo point itself is stored after COMPLETED)
    SAFETY_SNAPSHOT: [0.05, 0.15],
    DOWNLOADING: [0.15, 0.8],
    IMPORTING_DATABASE: [0.8, 0.93],
    SWAPPING: [0.93, 0.99],
  },
  async onEvent(event, ctx) {
    switch (event.type) {
      case 'snapshot': {
        if (event.kind !== 'safety') break;
        await recordJobSnapshot(ctx, event, 'safety');
        if (ctx.completed) await ctx.attachUndoPoint(event.id);
        else await ctx.write({ safetySnapshotId: event.id });
        break;
      }
      case 'completed':
        await ctx.complete();
        break;
      case 'retention':
        await applyRetention(ctx, event, 'safety');
        break;
      default:
        break;
    }
  },
  outcome(result) {
    if (succeeded(result)) return { status: 'completed' };
    return failureOf(result, 'RESTORE_FAILED');
  },
};
