import type { MikroORM } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import { Customer } from '../customers/customer.entity.js';
import type { Logger } from '../infra/logger.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import { type JobStore, QueueUnavailableError } from '../jobs/job-store.js';
import { enqueueWeeklyDrills } from './weekly-drills.js';

export interface DailyDeps {
  orm: MikroORM;
  redis: Redis;
  prefix: string;
  node: string;
  /** Creates the jobs (and queues them in the node's daily lane). */
  store: JobStore;
  logger: Logger;
}

export interface DailyRun {
  enqueued: number[];
  /** customers with a job in progress: tried again later */
  busy: number[];
  /** customers whose job could not be queued (its row is FAILED): tried again later */
  unqueued: number[];
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
 * node. A customer with a job in progress is reported as busy; one whose job could not be
 * queued (Redis unreachable) gets its row FAILED, so it does not block the customer, and is
 * reported as unqueued; the loop goes on with the others. The caller tries both again later.
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
  const run: DailyRun = { enqueued: [], busy: [], unqueued: [] };
  let done = 0;
  for (const customer of customers) {
    try {
      const job = await deps.store.create(
        {
          customer,
          kind: 'backup',
          scope: 'both',
          source: 'daily',
          requestedByKind: 'schedule',
          requestedById: null,
        },
        'The daily backup could not be queued; it is tried again shortly.',
      );
      run.enqueued.push(job.id);
    } catch (error) {
      if (error instanceof JobInProgressError) run.busy.push(customer.id);
      else if (error instanceof QueueUnavailableError) {
        deps.logger.warn(
          { err: error.cause, jobId: error.job.id, customerId: customer.id },
          'not queued',
        );
        run.unqueued.push(customer.id);
      } else throw error;
    }
    onProgress?.(++done, customers.length);
  }
  deps.logger.info(
    { enqueued: run.enqueued.length, busy: run.busy.length, unqueued: run.unqueued.length },
    'daily backups enqueued',
  );
  return run;
}

/** How long after a daily run its busy or unqueued customers are tried again. */
export const DAILY_RETRY_MS = 15 * 60_000;

/**
 * Fires the daily backups at the configured time, once per node and day (a Redis key guards
 * against a restart firing them twice), and retries busy or unqueued customers every 15
 * minutes until the next day's run. The day's run and the retries have timers of their own:
 * a customer who stays busy never holds back the next day's run of everyone else.
 */
export class DailySchedule {
  private dailyTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When each timer fires next (for the operator's log and the tests). */
  readonly armed: { daily: Date | null; retry: { at: Date; customers: number[] } | null } = {
    daily: null,
    retry: null,
  };

  constructor(
    private readonly deps: DailyDeps,
    private readonly at: string,
    private readonly afterRun?: (day: Date) => Promise<void>,
  ) {}

  start(): void {
    this.armDaily(nextRunAt(this.at));
  }

  stop(): void {
    this.stopped = true;
    if (this.dailyTimer) clearTimeout(this.dailyTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.armed.daily = null;
    this.armed.retry = null;
  }

  private armDaily(when: Date): void {
    if (this.stopped) return;
    if (this.dailyTimer) clearTimeout(this.dailyTimer);
    this.armed.daily = when;
    this.dailyTimer = setTimeout(
      () => void this.runDaily(when),
      Math.max(0, when.getTime() - Date.now()),
    );
    this.dailyTimer.unref();
  }

  private armRetry(customers: number[]): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.armed.retry = null;
    if (this.stopped || customers.length === 0) return;
    const at = new Date(Date.now() + DAILY_RETRY_MS);
    this.armed.retry = { at, customers };
    this.retryTimer = setTimeout(() => void this.retry(customers), DAILY_RETRY_MS);
    this.retryTimer.unref();
  }

  /**
   * A customer whose daily backup failed because the repository was unreachable: backed up
   * again with the next retry (every 15 minutes until the next day's run).
   */
  retryLater(customerId: number): void {
    const waiting = this.armed.retry?.customers ?? [];
    if (!waiting.includes(customerId)) this.armRetry([...waiting, customerId]);
  }

  /** The day's run (public for the tests: the timer calls it at the configured time). */
  async runDaily(when: Date): Promise<void> {
    // The next day's run is armed first, whatever happens to this one.
    this.armDaily(nextRunAt(this.at, new Date(Math.max(Date.now(), when.getTime()))));
    const day = when.toISOString().slice(0, 10);
    try {
      const key = `${this.deps.prefix}:daily:${this.deps.node}:${day}`;
      const first = await this.deps.redis.set(key, '1', 'EX', 3 * 86_400, 'NX');
      if (first !== 'OK') return;
      const run = await enqueueDailyBackups(this.deps);
      // Today's list replaces yesterday's, if any is still being retried.
      this.armRetry([...run.busy, ...run.unqueued]);
      // Behind the night's backups in the daily lane: the drills of today's share of the
      // node's customers (their newest daily snapshot so far).
      await enqueueWeeklyDrills({ ...this.deps, em: this.deps.orm.em.fork() }, when).catch(
        (error: unknown) => this.deps.logger.error({ err: error }, 'drills could not be enqueued'),
      );
      void this.afterRun?.(when).catch((error: unknown) => {
        this.deps.logger.error({ err: error }, 'after the daily backups');
      });
    } catch (error) {
      this.deps.logger.error({ err: error }, 'daily backups could not be enqueued');
    }
  }

  /** A retry of the customers a run could not back up (public for the tests). */
  async retry(customers: number[]): Promise<void> {
    try {
      const run = await enqueueDailyBackups(this.deps, customers);
      this.armRetry([...run.busy, ...run.unqueued]);
    } catch (error) {
      this.deps.logger.error({ err: error }, 'daily backups could not be enqueued');
      this.armRetry(customers);
    }
  }
}
