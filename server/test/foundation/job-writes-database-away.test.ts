// The writes that end a job while the database cannot be reached (found by the chaos soak: a
// backup that finished while MariaDB restarted lost its end, the row stayed RUNNING until the
// stale sweep called it interrupted). The job store talks to MariaDB through a TCP relay of
// the test's own, which is closed (connections refused, open ones cut) and opened again: the
// system server itself is never stopped.
import { MikroORM } from '@mikro-orm/mariadb';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { ormOptions } from '../../src/db/orm.js';
import { isConnectionError } from '../../src/jobs/db-retry.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { buildCustomer, buildJob } from '../support/factories.js';
import { createTestDatabase, freePort, REDIS_URL, type TestDatabase } from '../support/sandbox.js';
import { TcpRelay } from '../support/tcp-relay.js';

let db: TestDatabase;
let relayOrm: MikroORM;
let redis: Redis;
let port: number;
let relay: TcpRelay;

beforeAll(async () => {
  db = await createTestDatabase();
  port = await freePort();
  relay = new TcpRelay(port);
  await relay.open();
  const cfg = { ...parseConfig({}), BACKUPS_DB_NAME: db.name, BACKUPS_DB_PORT: port };
  relayOrm = await MikroORM.init({ ...ormOptions(cfg), ensureDatabase: false });
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  await relayOrm?.close(true);
  await relay?.close();
  redis?.disconnect();
  await db?.drop();
});

describe('a job ends while the database is away', () => {
  it('complete() waits for the database and the row ends COMPLETED', async () => {
    const customer = await buildCustomer(db.orm.em);
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const retries: number[] = [];
    const store = new JobStore({
      orm: relayOrm,
      redis,
      prefix: `t${Date.now()}`,
      retryWritesForMs: 60_000,
      onWriteRetry: (_e, attempt) => retries.push(attempt),
    });
    await relay.close();
    const completing = store.complete(
      { id: job.id, customerId: customer.id },
      {
        snapshotId: 'a'.repeat(64),
      },
    );
    await new Promise((r) => setTimeout(r, 3000));
    await relay.open();
    expect(await completing).toBe(true);
    expect(retries.length).toBeGreaterThan(0);
    const row = await db.orm.em.fork().findOneOrFail(BackupJob, job.id);
    expect(row.status).toBe('completed');
    expect(row.snapshotId).toBe('a'.repeat(64));
  });

  it('without the retry the same write is lost: the call rejects and the row stays RUNNING', async () => {
    const customer = await buildCustomer(db.orm.em);
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const store = new JobStore({ orm: relayOrm, redis, prefix: 't', retryWritesForMs: 0 });
    await relay.close();
    try {
      const error = await store
        .fail(
          { id: job.id, customerId: customer.id },
          {
            code: 'BACKUP_FAILED',
            message: 'x',
          },
        )
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(Error);
    } finally {
      await relay.open();
    }
    const row = await db.orm.em.fork().findOneOrFail(BackupJob, job.id);
    expect(row.status).toBe('running');
  });

  it('an error that is not about the connection is not retried', async () => {
    expect(isConnectionError(new Error("Unknown column 'x' in 'field list'"))).toBe(false);
    expect(
      isConnectionError(Object.assign(new Error('dup'), { errno: 1062, sqlState: '23000' })),
    ).toBe(false);
  });
});
