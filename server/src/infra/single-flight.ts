import { performance } from 'node:perf_hooks';

/**
 * Shares one in-flight read among everyone asking for the same key at the same moment. A caller
 * only joins a read that started after the moment it gives (for the job feeds of
 * jobs/job-watch.ts: when its round began), so nobody gets a state older than the change that
 * woke it. Each feed reads a row once per round anyway; this only spares a second query when
 * two rounds of the same process ask for the same row at once.
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
