import { findCatalogRow } from '../../snapshots/catalog-read.js';
import { entryOfListingLine, SnapshotIndexWriter } from '../../snapshots/snapshot-index.js';
import type { IBackupJob } from '../job.entity.js';
import { customerMessage } from '../job-messages.js';
import { failureOf, succeeded } from './failure.js';
import type { Outcome, Task } from './task.js';

interface IndexState {
  writer: SnapshotIndexWriter | null;
  content: string;
  /** The content folder's path in the snapshot: the listing's paths are made relative to it. */
  root: string;
  expected: number;
  lastWrite: number;
  broken: boolean;
  done: boolean;
}

const states = new WeakMap<IBackupJob, IndexState>();

function stateOf(job: IBackupJob): IndexState {
  let state = states.get(job);
  if (!state) {
    state = {
      writer: null,
      content: '',
      root: '',
      expected: 0,
      lastWrite: 0,
      broken: false,
      done: false,
    };
    states.set(job, state);
  }
  return state;
}

const LISTING: readonly [number, number] = [0.05, 0.9];

/**
 * INDEX: scripts/customer-index lists what the snapshot holds of the customer (one restic ls,
 * only their folder of a legacy daily snapshot; restic's own lines, passed through) and the
 * dump's tables; they are stored as the catalog row's index, which is marked indexed only once
 * whole. It only reads the repository:
 * it runs in its own lane, beside the customer's backup or restore, never waiting for them.
 */
export const indexTask: Task = {
  kind: 'index',
  script: 'customer-index',
  readsOnly: true,
  args(job) {
    if (!job.snapshotId) throw new Error(`index job ${job.id} has no snapshot id`);
    return [String(job.customer.id), job.snapshotId, job.source, '--job', String(job.id)];
  },
  timeoutMs: (config) => config.BACKUPS_INDEX_TIMEOUT_SECONDS * 1000,
  lane: () => 'index',
  phases: {
    VERIFYING: [0, LISTING[0]],
    LISTING,
    READING_DUMP: [LISTING[1], 0.99],
  },
  async onEvent(event, ctx) {
    const state = stateOf(ctx.job);
    if (state.broken) return;
    try {
      switch (event.type) {
        case 'index': {
          const row = await findCatalogRow(ctx.em, ctx.ref.customerId, ctx.job.snapshotId ?? '');
          if (!row) throw new Error('the snapshot is no longer in the catalog');
          state.writer = new SnapshotIndexWriter(ctx.em, row.id);
          state.content = event.content;
          state.root = event.root;
          state.expected = event.entries;
          await state.writer.begin();
          break;
        }
        case 'table':
          state.writer?.addTable(event.name, event.size);
          break;
        case 'completed': {
          if (!state.writer) throw new Error('the script ended without an index');
          const { entries, skipped } = await state.writer.finish(state.content);
          if (skipped) ctx.log.warn({ skipped }, 'paths the index cannot hold were left out');
          ctx.log.info({ entries }, 'snapshot indexed');
          state.done = true;
          await ctx.complete();
          break;
        }
        default:
          break;
      }
    } catch (error) {
      state.broken = true;
      ctx.log.error({ err: error }, 'the index could not be stored');
    }
  },
  async onListing(line, ctx) {
    const state = stateOf(ctx.job);
    if (state.broken) return;
    try {
      if (!state.writer) throw new Error('a listing before the index event');
      // The script passes only the nodes below the root; anything else is not stored.
      const entry = entryOfListingLine(line, state.root);
      if (!entry) return;
      await state.writer.add(entry);
      const now = Date.now();
      if (now - state.lastWrite >= 500 && state.expected > 0) {
        state.lastWrite = now;
        const fraction = Math.min(1, state.writer.entries / state.expected);
        await ctx.write({ progress: LISTING[0] + (LISTING[1] - LISTING[0]) * fraction });
      }
    } catch (error) {
      state.broken = true;
      ctx.log.error({ err: error }, 'the index could not be stored');
    }
  },
  outcome(result, ctx): Outcome {
    const state = stateOf(ctx.job);
    if (succeeded(result) && state.done) return { status: 'completed' };
    if (succeeded(result) || state.broken) {
      return { status: 'failed', code: 'INDEX_FAILED', message: customerMessage('INDEX_FAILED') };
    }
    return failureOf(result, 'INDEX_FAILED');
  },
};
