import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { JobInProgressError } from '../../src/jobs/job-errors.js';
import { QueueRegistry } from '../../src/jobs/job-queue.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildCustomer } from '../support/factories.js';

async function activeJobCount(db: TestDatabase, customerId?: number): Promise<number> {
  const where = customerId === undefined ? '' : `and customer_id = ${Number(customerId)}`;
  const [row] = await db.orm.em
    .getConnection()
    .execute<{ n: number }[]>(
      `select count(*) as n from backup_jobs where status in ('pending','running') ${where}`,
    );
  return Number(row?.n);
}

function backupFor(customer: ICustomer) {
  return {
    customer,
    kind: 'backup' as const,
    scope: 'both' as const,
    source: 'manual' as const,
    requestedByKind: 'customer' as const,
  };
}

describe('at most one active job per customer, enforced by the database', () => {
  let db: TestDatabase;
  let redis: Redis;
  let queues: QueueRegistry;
  let store: JobStore;
  const prefix = `t${randomBytes(5).toString('hex')}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    redis = new Redis('redis://127.0.0.1:6379/0');
    queues = new QueueRegistry({ redisUrl: 'redis://127.0.0.1:6379/0', prefix });
    store = new JobStore({ orm: db.orm, redis, prefix, queues });
  });
  afterAll(async () => {
    await queues.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await db.drop();
  });

  it('50 concurrent attempts for one customer leave exactly one active job', async () => {
    const customer = await buildCustomer(db.orm.em);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => store.create(backupFor(customer))),
    );
    const created = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter(
      (r) => r.status === 'rejected' && r.reason instanceof JobInProgressError,
    );
    expect(created).toHaveLength(1);
    expect(refused).toHaveLength(49);
    expect(await activeJobCount(db, customer.id)).toBe(1);
    const first = refused[0];
    if (first?.status !== 'rejected') throw new Error('expected a refusal');
    const winner = created[0];
    if (winner?.status !== 'fulfilled') throw new Error('expected a job');
    expect((first.reason as JobInProgressError).job?.id).toBe(winner.value.id);
  });

  it('50 customers each get their own active job at once', async () => {
    const customers = await Promise.all(Array.from({ length: 50 }, () => buildCustomer(db.orm.em)));
    const before = await activeJobCount(db);
    const results = await Promise.allSettled(customers.map((c) => store.create(backupFor(c))));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect((await activeJobCount(db)) - before).toBe(50);
  });

  it('a finished job frees the customer for the next one', async () => {
    const customer = await buildCustomer(db.orm.em);
    const job = await store.create(backupFor(customer));
    await expect(store.create(backupFor(customer))).rejects.toBeInstanceOf(JobInProgressError);
    await db.orm.em
      .getConnection()
      .execute(`update backup_jobs set status = 'completed' where id = ?`, [job.id]);
    const next = await store.create(backupFor(customer));
    expect(next.id).not.toBe(job.id);
    expect(await activeJobCount(db, customer.id)).toBe(1);
  });

  it('a job that only reads the repository runs beside a backup, one of each kind per customer', async () => {
    const customer = await buildCustomer(db.orm.em);
    await store.create(backupFor(customer));
    const insert = (kind: string) =>
      db.orm.em.getConnection().execute(
        `insert into backup_jobs (customer_id, kind, scope, source, status, requested_by_kind, created_at)
         values (?, ?, 'both', 'manual', 'pending', 'customer', now(3))`,
        [customer.id, kind],
      );
    // Written as rows here: their tasks come with the browse, download and drill issues.
    await insert('index');
    await insert('download');
    await insert('verify');
    await expect(insert('index')).rejects.toThrow(/Duplicate entry/);
    await expect(store.create({ ...backupFor(customer), kind: 'restore' })).rejects.toBeInstanceOf(
      JobInProgressError,
    );
    expect(await activeJobCount(db, customer.id)).toBe(4);
  });
});
