import { performance } from 'node:perf_hooks';

/**
 * Shares one in-flight read among everyone asking for the same key at the same moment. A job
 * change is announced on the job's channel and on its customer's; both feeds (jobs/job-watch.ts)
 * re-read the same row, and with this they do it with one query. A caller only joins a read
 * that started after the moment it gives (when its round began), so nobody gets a state older
 * than the change that woke it.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, { startedAt: number; promise: Promise<T> }>();

  run(key: string, notBefore: number, load: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running && running.startedAt >= notBefore) return running.promise;
    const entry = { startedAt: performance.now(), promise: load() };
    this.inFlight.set(key, entry);
    void entry.promise
      .finally(() => {
        if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
      })
      .catch(() => undefined);
    return entry.promise;
  }
}

export const now = (): number => performance.now();
