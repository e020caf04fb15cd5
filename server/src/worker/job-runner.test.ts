import { describe, expect, it } from 'vitest';
import type { JobScriptEvent } from '../executors/script-events.js';
import type { RunOptions, ScriptResult, ScriptRunner } from '../executors/script-runner.js';
import { createLogger } from '../infra/logger.js';
import type { IBackupJob } from '../jobs/job.entity.js';
import type { JobStore } from '../jobs/job-store.js';
import { JobRunner, type JobRunnerDeps } from './job-runner.js';

/** The store's writes, in order, as the runner makes them (no database). */
function fakeStore(job: Partial<IBackupJob>) {
  const calls: [string, ...unknown[]][] = [];
  const row = { id: 9, customer: { id: 5, host: 'n1' }, scope: 'both', source: 'manual', ...job };
  const store = {
    claim: async (id: number) => {
      calls.push(['claim', id]);
      return row;
    },
    heartbeat: async () => undefined,
    progress: async (_ref: unknown, fields: unknown) => {
      calls.push(['progress', fields]);
      return true;
    },
    complete: async (_ref: unknown, fields: unknown) => {
      calls.push(['complete', fields]);
      return true;
    },
    fail: async (_ref: unknown, failure: unknown) => {
      calls.push(['fail', failure]);
      return true;
    },
    handBack: async () => {
      calls.push(['handBack']);
      return true;
    },
    attachUndoPoint: async (_ref: unknown, id: string) => {
      calls.push(['attachUndoPoint', id]);
      return true;
    },
    settle: async () => {
      calls.push(['settle']);
    },
  };
  return { store: store as unknown as JobStore, calls };
}

/** A script runner that plays `events` and ends with `end`; records what it was asked to run. */
function fakeScripts(events: JobScriptEvent[], end: Partial<ScriptResult> = {}) {
  const runs: string[][] = [];
  const scripts = {
    run: async (name: string, args: readonly string[], options: RunOptions = {}) => {
      runs.push([name, ...args]);
      const ok = { exitCode: 0, timedOut: false, aborted: false, lastError: null, stderrTail: '' };
      // the site's recovery succeeds (a failing one is retried: restore-database-away.test.ts)
      if (args.includes('--recover')) return ok;
      for (const e of events) await options.onEvent?.(e);
      return {
        exitCode: 0,
        timedOut: false,
        aborted: false,
        lastError: null,
        stderrTail: '',
        ...end,
      };
    },
  };
  return { scripts: scripts as unknown as ScriptRunner, runs };
}

const sql: unknown[][] = [];
const orm = {
  em: {
    fork: () => ({ getConnection: () => ({ execute: async (...a: unknown[]) => sql.push(a) }) }),
  },
} as unknown as JobRunnerDeps['orm'];

function runner(store: JobStore, scripts: ScriptRunner) {
  return new JobRunner({
    orm,
    store,
    scripts,
    logger: createLogger('runner-test', 'silent'),
    config: {
      BACKUPS_BACKUP_TIMEOUT_SECONDS: 60,
      BACKUPS_RESTORE_TIMEOUT_SECONDS: 60,
      BACKUPS_HEARTBEAT_SECONDS: 60,
      BACKUPS_VERIFY_TIMEOUT_SECONDS: 60,
      BACKUPS_VERIFY_RETRY_SECONDS: 60,
    },
  });
}

const undo = {
  type: 'snapshot',
  kind: 'safety',
  id: 'c'.repeat(64),
  time: '2026-12-02T10:00:00Z',
  paths: [],
  tags: ['customer-5', 'safety', 'both', 'job-9'],
} as JobScriptEvent;

describe('the job runner', () => {
  it('a restore: phases as weighted progress, COMPLETED at the switch-over, then its undo point, then settled', async () => {
    const { store, calls } = fakeStore({ kind: 'restore', snapshotId: 'b'.repeat(64) });
    const { scripts, runs } = fakeScripts([
      { type: 'phase', phase: 'DOWNLOADING' },
      { type: 'progress', done: 50, total: 100, fraction: 0.5, phase: 'DOWNLOADING' },
      { type: 'phase', phase: 'SWAPPING' },
      { type: 'completed' },
      { type: 'phase', phase: 'STORING_UNDO_POINT' },
      undo,
    ]);
    expect(await runner(store, scripts).run(9)).toBe('completed');
    expect(runs).toEqual([
      ['customer-restore', '5', 'b'.repeat(64), 'both', 'manual', '--job', '9'],
    ]);
    const names = calls.map((c) => c[0]);
    expect(names[0]).toBe('claim');
    expect(names.slice(names.indexOf('complete'))).toEqual([
      'complete',
      'attachUndoPoint',
      'settle',
    ]);
    const writes = calls.filter((c) => c[0] === 'progress').map((c) => c[1]);
    expect(writes).toContainEqual(
      expect.objectContaining({ phase: 'DOWNLOADING', progress: 0.15 }),
    );
    // the housekeeping phase after COMPLETED is not written over the finished row
    expect(writes).not.toContainEqual(expect.objectContaining({ phase: 'STORING_UNDO_POINT' }));
    expect(calls).toContainEqual(['attachUndoPoint', 'c'.repeat(64)]);
  });

  it("a failing script: FAILED with its code and words, and its log's last lines as the operator's detail", async () => {
    const { store, calls } = fakeStore({ kind: 'backup' });
    const { scripts } = fakeScripts(
      [
        { type: 'phase', phase: 'DUMPING_DATABASE' },
        {
          type: 'error',
          code: 'DATABASE_DUMP_FAILED',
          message: 'Your database could not be saved.',
        },
      ],
      {
        exitCode: 1,
        lastError: { code: 'DATABASE_DUMP_FAILED', message: 'Your database could not be saved.' },
        stderrTail: 'line 1\nmysqldump: Got error: 1044: Access denied\n',
      },
    );
    expect(await runner(store, scripts).run(9)).toBe('failed');
    expect(calls.find((c) => c[0] === 'fail')?.[1]).toEqual({
      code: 'DATABASE_DUMP_FAILED',
      message: 'Your database could not be saved.',
      detail: 'line 1\nmysqldump: Got error: 1044: Access denied',
    });
    expect(calls.map((c) => c[0])).not.toContain('complete');
  });

  it('a worker shutdown hands the job back; a killed script has its site recovered first', async () => {
    const back = fakeStore({ kind: 'backup' });
    const aborted = fakeScripts([{ type: 'phase', phase: 'UPLOADING' }], {
      exitCode: 6,
      aborted: true,
    });
    expect(await runner(back.store, aborted.scripts).run(9)).toBe('pending');
    expect(back.calls.at(-1)).toEqual(['handBack']);

    const killed = fakeStore({ kind: 'restore', snapshotId: 'b'.repeat(64) });
    const dead = fakeScripts([{ type: 'phase', phase: 'DOWNLOADING' }], { exitCode: 137 });
    expect(await runner(killed.store, dead.scripts).run(9)).toBe('failed');
    expect(dead.runs.at(-1)).toEqual(['customer-restore', '--recover', '5']);
  });

  it('a backup that said "completed" without a snapshot is completed only by a good end with one', async () => {
    const { store, calls } = fakeStore({ kind: 'backup' });
    const { scripts } = fakeScripts([{ type: 'completed' }]);
    expect(await runner(store, scripts).run(9)).toBe('failed');
    expect(calls.find((c) => c[0] === 'fail')?.[1]).toMatchObject({ code: 'BACKUP_FAILED' });
  });
});
