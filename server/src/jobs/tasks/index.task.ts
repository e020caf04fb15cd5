import { findCatalogRow } from '../../snapshots/catalog-read.js';
import {
  entryBelow,
  isBelow,
  type ListedNode,
  parseListingLine,
  SnapshotIndexWriter,
} from '../../snapshots/snapshot-index.js';
import type { IBackupJob } from '../job.entity.js';
import { customerMessage } from '../job-messages.js';
import { failureOf, succeeded } from './failure.js';
import type { Outcome, Task, TaskContext } from './task.js';

interface IndexState {
  writer: SnapshotIndexWriter | null;
  /** The writer being made (the catalog row found, its old index removed). */
  ready: Promise<SnapshotIndexWriter> | null;
  content: string;
  /** The folders that can be the content folder, best first (the listing event's). */
  roots: string[];
  /** The root whose entries are stored as they come: the first one a listed node is below. */
  storing: string | null;
  /** Nodes below another root, kept until the index event says which root it is. */
  held: ListedNode[];
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
      ready: null,
      content: '',
      roots: [],
      storing: null,
      held: [],
      expected: 0,
      lastWrite: 0,
      broken: false,
      done: false,
    };
    states.set(job, state);
  }
  return state;
}

/**
 * The catalog row's writer, its old index removed. Started before the script (prepare): the
 * removal of an old index (as many rows again) overlaps restic's start instead of delaying the
 * first insert.
 */
function writerOf(state: IndexState, ctx: TaskContext): Promise<SnapshotIndexWriter> {
  state.ready ??= (async () => {
    const row = await findCatalogRow(ctx.em, ctx.ref.customerId, ctx.job.snapshotId ?? '');
    if (!row) throw new Error('the snapshot is no longer in the catalog');
    const writer = new SnapshotIndexWriter(ctx.em, row.id);
    await writer.begin();
    state.writer = writer;
    return writer;
  })();
  return state.ready;
}

const LISTING: readonly [number, number] = [0.05, 0.9];

/**
 * INDEX: scripts/customer-index lists what the snapshot holds of the customer (one restic ls,
 * only their folder of a legacy daily snapshot; restic's own lines, passed on while restic
 * lists) and the dump's tables; they are stored as the catalog row's index, which is marked
 * indexed only once whole. The entries of the first root a listed node is below are stored as
 * they come (almost always the content folder: a site has one); should the index event name
 * another, they are removed and that root's, held meanwhile, stored. It only reads the repository:
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
  async prepare(ctx) {
    // Awaited at the listing event; a failure then breaks the index (never unhandled here).
    writerOf(stateOf(ctx.job), ctx).catch(() => undefined);
    return { args: indexTask.args(ctx.job) };
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
        case 'listing':
          await writerOf(state, ctx);
          state.roots = event.roots;
          state.expected = event.estimate ?? 0;
          break;
        case 'index': {
          const writer = await writerOf(state, ctx);
          state.content = event.content;
          // The content folder is known now: entries stored of another root go, the held
          // ones of this root are stored.
          if (state.storing !== event.root) {
            if (state.storing !== null) await writer.reset();
            for (const node of state.held) {
              const entry = entryBelow(node, event.root);
              if (entry) await writer.add(entry);
            }
          }
          state.storing = event.root;
          state.held = [];
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
  async onListing(lines, ctx) {
    const state = stateOf(ctx.job);
    if (state.broken) return;
    try {
      const writer = state.writer;
      if (!writer) throw new Error('a listing line before the listing event');
      for (const line of lines) {
        const node = parseListingLine(line);
        if (!node) continue;
        state.storing ??= state.roots.find((root) => isBelow(node, root)) ?? null;
        const entry = state.storing === null ? null : entryBelow(node, state.storing);
        if (!entry) state.held.push(node);
        // Awaited only when a batch is full (its turn to be sent), not a line.
        else if (writer.put(entry)) await writer.send();
      }
      const now = Date.now();
      if (now - state.lastWrite >= 500 && state.expected > 0) {
        state.lastWrite = now;
        const fraction = Math.min(1, writer.entries / state.expected);
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
