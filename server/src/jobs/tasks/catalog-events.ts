import type { SnapshotEvent } from '../../executors/script-events.js';
import { forgetSnapshots, recordSnapshot } from '../../snapshots/catalog.js';
import type { SnapshotSource } from '../../snapshots/snapshot-scope.js';
import { readTags } from '../../snapshots/snapshot-tags.js';
import type { TaskContext } from './task.js';

/** A snapshot the job's script made, into the catalog (scope from its tags). */
export function recordJobSnapshot(
  ctx: TaskContext,
  event: SnapshotEvent,
  source: SnapshotSource,
): Promise<void> {
  return recordSnapshot(ctx.em, {
    customerId: ctx.ref.customerId,
    source,
    scope: readTags(event.tags).scope ?? ctx.job.scope,
    snapshot: event,
    jobId: ctx.job.id,
  });
}

/**
 * The script's retention of one tag set (manual or daily after a backup, safety after a
 * restore's undo point): the forgotten snapshots leave the catalog; retention that found the
 * repository busy is left to the worker's deferred retention.
 */
export async function applyRetention(
  ctx: TaskContext,
  event: { removed: string[]; deferred?: boolean | undefined },
  source: SnapshotSource,
): Promise<void> {
  if (event.deferred) {
    ctx.log.warn({ source }, 'retention deferred: the repository is busy');
    ctx.retentionDeferred(source);
    return;
  }
  const removed = await forgetSnapshots(ctx.em, ctx.ref.customerId, source, event.removed);
  ctx.log.info({ removed }, 'retention applied');
}
