import type { MikroORM } from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import type { Redis } from 'ioredis';
import { Customer } from '../customers/customer.entity.js';
import type { Logger } from '../infra/logger.js';
import { insertPendingJob } from '../jobs/create-job.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import { enqueueJob, type QueuedJob } from '../jobs/job-queue.js';

export interface DailyDeps {
  orm: MikroORM;
  redis: Redis;
  prefix: string;
  node: string;
  queue: BeeQueue<QueuedJob>;
  logger: Logger;
}

export interface DailyRun {
  enqueued: number[];
  busy: number[];
}

/** The next time of day hh:mm (local time) after `now`. */
export function nextRunAt(at: string, now: Date = new Date()): Date {
  const [h, m] = at.split(':').map(Number);
  const next = new Date(now);
  next.setHours(h ?? 2, m ?? 0, 0, 0);
  if (next <= now) next.setDate(next.getDate() + 1);
  return next;
}

/**
 * Enqueues a daily backup (scope both, into the daily repository) for every customer of the
 * node. A customer with a job in progress is reported as busy; the caller tries it again later.
 */
export async function enqueueDailyBackups(
  deps: DailyDeps,
  onlyCustomers?: readonly number[],
  onProgress?: (done: number, total: number) => void,
): Promise<DailyRun> {
  const em = deps.orm.em.fork();
  const where = onlyCustomers
    ? { host: deps.node, id: { $in: [...onlyCustomers] } }
    : { host: deps.node };
  const customers = await em.find(Customer, where, { orderBy: { id: 'asc' } });
  const run: DailyRun = { enqueued: [], busy: [] };
  let done = 0;
  for (const customer of customers) {
    try {
      const job = await insertPendingJob(em, {
        customer,
        kind: 'backup',
        scope: 'both',
        source: 'daily',
        requestedByKind: 'schedule',
        requestedById: null,
      });
      await enqueueJob(deps.queue, job.id);
      run.enqueued.push(job.id);
    } catch (error) {
      if (!(error instanceof JobInProgressError)) throw error;
      run.busy.push(customer.id);
    }
    onProgress?.(++done, customers.length);
  }
  deps.logger.info(
    { enqueued: run.enqueued.length, busy: run.busy.length },
    'daily backups enqueued',
  );
  return run;
}

/**
 * Fires the daily backups at the configured time, once per node and day (a Redis key guards
 * against a restart firing them twice), and retries busy customers every 15 minutes.
 */
export class DailySchedule {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly deps: DailyDeps,
    private readonly at: string,
    private readonly afterRun?: (day: Date) => Promise<void>,
  ) {}

  start(): void {
    this.arm(nextRunAt(this.at));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private arm(when: Date, retry?: number[]): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => void this.fire(when, retry),
      Math.max(0, when.getTime() - Date.now()),
    );
    this.timer.unref();
  }

  private async fire(when: Date, retry?: number[]): Promise<void> {
    const day = when.toISOString().slice(0, 10);
    try {
      if (!retry) {
        const key = `${this.deps.prefix}:daily:${this.deps.node}:${day}`;
        const first = await this.deps.redis.set(key, '1', 'EX', 3 * 86_400, 'NX');
        if (first !== 'OK') return this.arm(nextRunAt(this.at));
      }
      const run = await enqueueDailyBackups(this.deps, retry);
      if (!retry) {
        void this.afterRun?.(when).catch((error: unknown) => {
          this.deps.logger.error({ err: error }, 'after the daily backups');
        });
      }
      if (run.busy.length) return this.arm(new Date(Date.now() + 15 * 60_000), run.busy);
    } catch (error) {
      this.deps.logger.error({ err: error }, 'daily backups could not be enqueued');
    }
    this.arm(nextRunAt(this.at));
  }
}
