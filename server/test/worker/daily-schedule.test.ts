import type BeeQueue from 'bee-queue';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createLogger } from '../../src/infra/logger.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { producerQueue, type QueuedJob } from '../../src/jobs/job-queue.js';
import { JobStore } from '../../src/jobs/job-store.js';
import {
  DAILY_RETRY_MS,
  type DailyDeps,
  DailySchedule,
  enqueueDailyBackups,
} from '../../src/worker/daily-schedule.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const REDIS_URL = 'redis://127.0.0.1:6379/0';
const DAY = 86_400_000;

/**
 * The scheduler's dependencies on a world's database and Redis namespace, for one node: a job
 * store whose daily lane is `queue` (a closed one stands for an unreachable Redis).
 */
function dailyDeps(world: WorkerWorld, node: string, redis: Redis, queue?: BeeQueue<QueuedJob>) {
  const daily =
    queue ?? producerQueue({ redisUrl: REDIS_URL, prefix: world.prefix }, node, 'daily');
  return {
    orm: world.db.orm,
    redis,
    prefix: world.prefix,
    node,
    store: new JobStore({
      orm: world.db.orm,
      redis,
      prefix: world.prefix,
      queues: { for: () => daily },
    }),
    logger: createLogger('daily-test', 'error'),
    queue: daily,
  } satisfies DailyDeps & { queue: BeeQueue<QueuedJob> };
}

describe('the daily schedule', () => {
  let world: WorkerWorld;
  let redis: Redis;
  const node = 'node-d';
  const customers: ICustomer[] = [];
  const schedules: DailySchedule[] = [];

  beforeAll(async () => {
    world = await createWorkerWorld();
    redis = new Redis(REDIS_URL);
    for (let i = 0; i < 3; i++) customers.push(await world.customer(node));
  });
  afterAll(async () => {
    for (const schedule of schedules) schedule.stop();
    redis?.disconnect();
    await world?.destroy();
  });

  const deps = (queue?: BeeQueue<QueuedJob>) => dailyDeps(world, node, redis, queue);
  const schedule = (d: DailyDeps) => {
    const made = new DailySchedule(d, '02:00');
    schedules.push(made);
    return made;
  };
  const dailyRows = (customer: ICustomer) =>
    world.db.orm.em
      .fork()
      .find(BackupJob, { customer: customer.id, source: 'daily' }, { orderBy: { id: 'asc' } });
  const finishActiveJobs = () =>
    world.db.orm.em
      .fork()
      .nativeUpdate(
        BackupJob,
        { status: { $in: ['pending', 'running'] } },
        { status: 'completed', finishedAt: new Date() },
      );

  it("a busy customer is tried again 15 minutes later, and the next day's run stays armed for everyone", async () => {
    const [a, b, c] = customers as [ICustomer, ICustomer, ICustomer];
    await world.store.create({
      customer: a,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
      requestedByKind: 'customer',
    });
    const daily = schedule(deps());
    const before = Date.now();
    await daily.runDaily(new Date());

    expect(await dailyRows(a)).toHaveLength(0);
    for (const customer of [b, c]) {
      expect((await dailyRows(customer)).map((j) => j.status)).toEqual(['pending']);
    }
    expect(daily.armed.retry?.customers).toEqual([a.id]);
    const retryAt = daily.armed.retry?.at.getTime() ?? 0;
    expect(retryAt).toBeGreaterThanOrEqual(before + DAILY_RETRY_MS);
    expect(retryAt).toBeLessThan(Date.now() + DAILY_RETRY_MS + 1000);
    // The next day's run is armed beside the retry: 02:00, within the next 24 hours.
    const next = daily.armed.daily;
    expect(next?.getHours()).toBe(2);
    expect(next?.getMinutes()).toBe(0);
    expect(next?.getTime()).toBeGreaterThan(Date.now());
    expect(next?.getTime()).toBeLessThanOrEqual(Date.now() + DAY);

    // Still busy at the retry: tried again later; the day's run is untouched.
    await daily.retry([a.id]);
    expect(daily.armed.retry?.customers).toEqual([a.id]);
    expect(daily.armed.daily).toBe(next);
    // Free at the next retry: backed up, no more retries.
    await finishActiveJobs();
    await daily.retry([a.id]);
    expect((await dailyRows(a)).map((j) => j.status)).toEqual(['pending']);
    expect(daily.armed.retry).toBeNull();
    expect(daily.armed.daily).toBe(next);
  });

  it('a queue that cannot be reached fails each row (the customer is not blocked), goes on with the others, and retries them all', async () => {
    await finishActiveJobs();
    const closed = producerQueue({ redisUrl: REDIS_URL, prefix: world.prefix }, node, 'daily');
    await closed.ready();
    await closed.close();
    const daily = schedule(deps(closed));
    // Another day than the first test's (the run is once per node and day).
    await daily.runDaily(new Date(Date.now() + 2 * DAY));

    for (const customer of customers) {
      const last = (await dailyRows(customer)).at(-1);
      expect(last?.status).toBe('failed');
      expect(last?.errorCode).toBe('QUEUE_UNAVAILABLE');
    }
    expect(
      await world.db.orm.em.fork().count(BackupJob, { status: 'pending', source: 'daily' }),
    ).toBe(0);
    expect(daily.armed.retry?.customers).toEqual(customers.map((c) => c.id));
    expect(daily.armed.daily).not.toBeNull();
    // The customer's slot is free: a manual backup is accepted.
    const manual = await world.store.create({
      customer: customers[0] as ICustomer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
      requestedByKind: 'customer',
    });
    expect(manual.status).toBe('pending');
  });
});

describe("the night's batch and a customer's own job", () => {
  let world: WorkerWorld;
  const node = 'node-q';

  beforeAll(async () => {
    world = await createWorkerWorld();
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it("a backup asked for during the night's batch starts before the batch is done", async () => {
    const nightly: ICustomer[] = [];
    for (let i = 0; i < 4; i++) nightly.push(await world.customer(node));
    const customer = await world.customer(node);
    const redis = new Redis(REDIS_URL);
    const deps = dailyDeps(world, node, redis);
    try {
      // The batch is queued first, then the customer asks (no worker yet: both wait).
      const batch = await enqueueDailyBackups(
        deps,
        nightly.map((c) => c.id),
      );
      expect(batch.enqueued).toHaveLength(4);
      const own = await world.enqueue({
        customer,
        kind: 'backup',
        scope: 'both',
        source: 'manual',
      });

      const worker = await world.startWorker(node, { BACKUPS_WORKER_CONCURRENCY: '2' });
      try {
        const done = await world.waitForJob(own.id, ['completed', 'failed']);
        expect(done.status).toBe('completed');
        const dailies = await Promise.all(
          batch.enqueued.map((id) => world.waitForJob(id, ['completed', 'failed'])),
        );
        expect(dailies.every((j) => j.status === 'completed')).toBe(true);
        const starts = dailies.map((j) => j.startedAt?.getTime() ?? 0).sort((a, b) => a - b);
        // One daily slot of two: the customer's job took the other at once, before the second
        // daily job started (one FIFO queue ran it after all four).
        expect(done.startedAt?.getTime()).toBeLessThanOrEqual(starts[1] as number);
      } finally {
        await worker.stop();
      }
    } finally {
      await deps.queue.close();
      redis.disconnect();
    }
  });
});
