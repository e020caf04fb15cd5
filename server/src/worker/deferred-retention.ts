import type { MikroORM } from '@mikro-orm/mariadb';
import type { ScriptRunner } from '../executors/script-runner.js';
import type { Logger } from '../infra/logger.js';
import { forgetSnapshots } from '../snapshots/catalog.js';
import type { SnapshotSource } from '../snapshots/snapshot-scope.js';

/**
 * Retention that a job could not apply because another job held the repository. The backup
 * itself succeeded; its customer's old snapshots are forgotten here, one at a time, retried
 * until the repository is free.
 */
export class DeferredRetention {
  private readonly waiting = new Map<string, { customerId: number; source: SnapshotSource }>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(
    private readonly deps: { orm: MikroORM; scripts: ScriptRunner; logger: Logger },
    private readonly retryMs = 15_000,
  ) {}

  add(customerId: number, source: SnapshotSource): void {
    this.waiting.set(`${source}/${customerId}`, { customerId, source });
    this.arm(1_000);
  }

  get size(): number {
    return this.waiting.size;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, ms);
    this.timer.unref();
  }

  /** Applies every waiting retention once; what is still locked waits for the next round. */
  async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const [key, { customerId, source }] of [...this.waiting]) {
        const removed: string[] = [];
        let deferred = false;
        const result = await this.deps.scripts.run(
          'backup-repository',
          [source, 'retention', '--customer', String(customerId)],
          {
            onEvent: (event) => {
              if (event.type !== 'retention') return;
              removed.push(...event.removed);
              deferred ||= event.deferred === true;
            },
          },
        );
        if (result.exitCode === 0 && !deferred) {
          this.waiting.delete(key);
          await forgetSnapshots(this.deps.orm.em.fork(), customerId, source, removed);
          this.deps.logger.info(
            { customerId, source, removed: removed.length },
            'deferred retention applied',
          );
        }
      }
    } finally {
      this.running = false;
      if (this.waiting.size) this.arm(this.retryMs);
    }
  }
}
