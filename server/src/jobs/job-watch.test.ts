import { describe, expect, it } from 'vitest';
import { streamEnds } from './job-watch.js';

const job = (over: Partial<Parameters<typeof streamEnds>[0]>) => ({
  status: 'completed' as const,
  kind: 'backup' as const,
  safetySnapshotId: null,
  settledAt: null,
  ...over,
});

describe("a job's subscription", () => {
  it('goes on while the job runs, and ends at any terminal state of a backup', () => {
    expect(streamEnds(job({ status: 'running' }))).toBe(false);
    expect(streamEnds(job({ status: 'completed' }))).toBe(true);
    expect(streamEnds(job({ status: 'failed' }))).toBe(true);
    expect(streamEnds(job({ status: 'cancelled' }))).toBe(true);
  });

  it('of a completed restore ends with its undo point, or once its script ended without one', () => {
    expect(streamEnds(job({ kind: 'restore' }))).toBe(false);
    expect(streamEnds(job({ kind: 'restore', safetySnapshotId: 'a'.repeat(64) }))).toBe(true);
    expect(streamEnds(job({ kind: 'restore', settledAt: new Date() }))).toBe(true);
    expect(streamEnds(job({ kind: 'restore', status: 'failed' }))).toBe(true);
  });
});
