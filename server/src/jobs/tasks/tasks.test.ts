import { describe, expect, it } from 'vitest';
import type { ScriptResult } from '../../executors/script-runner.js';
import type { IBackupJob } from '../job.entity.js';
import { taskFor } from './index.js';
import type { TaskContext } from './task.js';

const result = (over: Partial<ScriptResult> = {}): ScriptResult => ({
  exitCode: 0,
  timedOut: false,
  aborted: false,
  lastError: null,
  stderrTail: '',
  ...over,
});

const job = (over: Partial<IBackupJob>) =>
  ({
    id: 7,
    customer: { id: 42 },
    kind: 'backup',
    scope: 'database',
    source: 'manual',
    snapshotId: null,
    label: null,
    ...over,
  }) as IBackupJob;

const ctx = (j: IBackupJob) => ({ job: j }) as TaskContext;

describe('the backup task', () => {
  const task = taskFor('backup');

  it('runs customer-backup with the script words for the scope, the job, source and label', () => {
    expect(task.script).toBe('customer-backup');
    expect(task.args(job({ scope: 'database', label: 'before the update' }))).toEqual([
      '42',
      'db',
      '--job',
      '7',
      '--source',
      'manual',
      '--label',
      'before the update',
    ]);
    expect(task.args(job({ scope: 'both', source: 'daily' }))).toEqual([
      '42',
      'both',
      '--job',
      '7',
      '--source',
      'daily',
    ]);
  });

  it("waits in the daily lane only for the schedule's backups", () => {
    expect(task.lane({ kind: 'backup', source: 'daily' })).toBe('daily');
    expect(task.lane({ kind: 'backup', source: 'manual' })).toBe('jobs');
  });

  it('is completed only by a good end with a snapshot', () => {
    expect(task.outcome(result(), ctx(job({ snapshotId: 'a'.repeat(64) })))).toEqual({
      status: 'completed',
    });
    expect(task.outcome(result(), ctx(job({})))).toMatchObject({
      status: 'failed',
      code: 'BACKUP_FAILED',
    });
  });

  it("fails with the script's own code and words, or TIMED_OUT", () => {
    const error = { code: 'SITE_TOO_LARGE', message: 'The site is 120 GiB, over the limit.' };
    expect(task.outcome(result({ exitCode: 3, lastError: error }), ctx(job({})))).toEqual({
      status: 'failed',
      code: 'SITE_TOO_LARGE',
      message: 'The site is 120 GiB, over the limit.',
    });
    expect(task.outcome(result({ exitCode: 6, timedOut: true }), ctx(job({})))).toMatchObject({
      status: 'failed',
      code: 'TIMED_OUT',
      message: expect.stringMatching(/took longer than allowed/),
    });
  });
});

describe('the restore task', () => {
  const task = taskFor('restore');

  it('runs customer-restore with the snapshot, the scope and source, in the jobs lane', () => {
    const restore = job({
      kind: 'restore',
      scope: 'files',
      source: 'daily',
      snapshotId: 'b'.repeat(64),
    });
    expect(task.args(restore)).toEqual(['42', 'b'.repeat(64), 'files', 'daily', '--job', '7']);
    expect(task.lane(restore)).toBe('jobs');
  });

  it('refuses to run without a snapshot', () => {
    expect(() => task.args(job({ kind: 'restore' }))).toThrow(/no snapshot id/);
  });

  it('without an error event falls back to RESTORE_FAILED in words a customer reads', () => {
    expect(task.outcome(result({ exitCode: 1 }), ctx(job({ kind: 'restore' })))).toEqual({
      status: 'failed',
      code: 'RESTORE_FAILED',
      message: 'The restore could not be completed. Your site was left as it was.',
    });
  });
});

describe('the verify task', () => {
  const task = taskFor('verify');

  it('runs customer-verify with the snapshot and its source, in the daily lane, giving way', () => {
    const drill = job({ kind: 'verify', source: 'daily', snapshotId: 'd'.repeat(64) });
    expect(task.script).toBe('customer-verify');
    expect(task.args(drill)).toEqual(['42', 'd'.repeat(64), 'daily', '--job', '7']);
    expect(task.lane({ kind: 'verify', source: 'manual' })).toBe('daily');
    expect(task.yieldsToSiteJobs).toBe(true);
    expect(task.recovery?.args(42)).toEqual(['--recover', '42']);
  });

  it("fails with the drill's problem in the customer's words", () => {
    const error = { code: 'VERIFICATION_FAILED', message: 'The database dump is incomplete.' };
    expect(task.outcome(result({ exitCode: 1, lastError: error }), ctx(job({})))).toEqual({
      status: 'failed',
      code: 'VERIFICATION_FAILED',
      message: 'The database dump is incomplete.',
    });
    expect(() => task.args(job({ kind: 'verify' }))).toThrow(/no snapshot id/);
  });
});

describe('the index task', () => {
  const task = taskFor('index');
  it('runs customer-index on the snapshot and its repository, in its own lane, reading only', () => {
    const index = job({ kind: 'index', source: 'daily', snapshotId: 'c'.repeat(64) });
    expect(task.script).toBe('customer-index');
    expect(task.args(index)).toEqual(['42', 'c'.repeat(64), 'daily', '--job', '7']);
    expect(task.lane(index)).toBe('index');
    expect(task.readsOnly).toBe(true);
  });

  it('is not completed by a good end without its index stored', () => {
    expect(task.outcome(result(), ctx(job({ kind: 'index' })))).toEqual({
      status: 'failed',
      code: 'INDEX_FAILED',
      message: 'The backup could not be read for browsing. Please try again later.',
    });
  });
});

describe('the download task', () => {
  const task = taskFor('download');

  it('waits in a lane of its own, never in front of a restore', () => {
    expect(task.lane({ kind: 'download', source: 'manual' })).toBe('downloads');
    expect(task.lane({ kind: 'download', source: 'daily' })).toBe('downloads');
  });

  it("ends FAILED when its script ended without an archive, with the script's words", () => {
    const ctx = { completed: false } as TaskContext;
    expect(task.outcome(result(), ctx)).toMatchObject({
      status: 'failed',
      code: 'DOWNLOAD_FAILED',
    });
    expect(
      task.outcome(
        result({ exitCode: 3, lastError: { code: 'PATH_NOT_FOUND', message: 'Not there.' } }),
        ctx,
      ),
    ).toEqual({ status: 'failed', code: 'PATH_NOT_FOUND', message: 'Not there.' });
  });
});
