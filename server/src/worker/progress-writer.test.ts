import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunningFields } from '../jobs/job-store.js';
import { ProgressWriter } from './progress-writer.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('the progress writer', () => {
  it('writes at most every 250 ms, merging what came between, and an immediate write at once', async () => {
    vi.useFakeTimers();
    const writes: RunningFields[] = [];
    const writer = new ProgressWriter(
      async (f) => writes.push(f),
      250,
      () => Date.now(),
    );
    await writer.write({ phase: 'UPLOADING', progress: 0.15 }, true);
    await writer.write({ progress: 0.2, bytesDone: 1 }, false);
    await writer.write({ progress: 0.3, bytesDone: 2 }, false);
    expect(writes).toEqual([{ phase: 'UPLOADING', progress: 0.15 }]);
    await vi.advanceTimersByTimeAsync(250);
    expect(writes).toEqual([
      { phase: 'UPLOADING', progress: 0.15 },
      { progress: 0.3, bytesDone: 2 },
    ]);
    await writer.write({ snapshotId: 'a'.repeat(64) }, true);
    expect(writes.at(-1)).toEqual({ snapshotId: 'a'.repeat(64) });
  });

  it('after close() writes what was pending and then nothing', async () => {
    vi.useFakeTimers();
    const writes: RunningFields[] = [];
    const writer = new ProgressWriter(
      async (f) => writes.push(f),
      250,
      () => Date.now(),
    );
    await writer.write({ progress: 0.1 }, true);
    await writer.write({ progress: 0.2 }, false);
    await writer.close();
    await writer.write({ progress: 0.9 }, true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes).toEqual([{ progress: 0.1 }, { progress: 0.2 }]);
  });

  it('keeps writes in order even when one is slow (what comes meanwhile is written after it)', async () => {
    const writes: unknown[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => {
      release = r;
    });
    const writer = new ProgressWriter(async (f) => {
      if (f.progress === 0.1) await slow;
      writes.push(f.progress ?? -1);
    });
    const first = writer.write({ progress: 0.1 }, true);
    await new Promise((r) => setImmediate(r)); // the first write is on its way, and stuck
    const second = writer.write({ progress: 0.2 }, true);
    release();
    await Promise.all([first, second]);
    expect(writes).toEqual([0.1, 0.2]);
  });
});
