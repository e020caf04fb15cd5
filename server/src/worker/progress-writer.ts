import type { RunningFields } from '../jobs/job-store.js';

/**
 * The writes of a running job, a few per second at most: progress lines can arrive much
 * faster (restic's four a second, times the phases running side by side). Fields written
 * between two writes are merged; `immediate` (a new phase, a snapshot) writes at once.
 * After close() nothing more is written: a late progress line must not touch a row that
 * the job's end has changed.
 */
export class ProgressWriter {
  private pending: RunningFields = {};
  private lastWrite = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly send: (fields: RunningFields) => Promise<unknown>,
    private readonly intervalMs = 250,
    private readonly now: () => number = Date.now,
  ) {}

  async write(fields: RunningFields, immediate: boolean): Promise<void> {
    if (this.closed) return;
    this.pending = { ...this.pending, ...fields };
    const wait = this.intervalMs - (this.now() - this.lastWrite);
    if (immediate || wait <= 0) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), wait);
  }

  /** Writes what is pending, then nothing more. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // One write at a time, in order.
    const next = this.chain.then(async () => {
      if (this.closed || Object.keys(this.pending).length === 0) return;
      const fields = this.pending;
      this.pending = {};
      this.lastWrite = this.now();
      await this.send(fields);
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}
