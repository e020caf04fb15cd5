import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type BeeQueue from 'bee-queue';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { type Config, parseConfig } from '../../../src/config/config.js';
import type { ICustomer } from '../../../src/customers/customer.entity.js';
import { createDemoSite } from '../../../src/customers/demo-site.js';
import { createLogger } from '../../../src/infra/logger.js';
import { BackupJob, type IBackupJob } from '../../../src/jobs/job.entity.js';
import { customerJobsTopic } from '../../../src/jobs/job-events.js';
import { producerQueue, type QueuedJob, type QueueLane } from '../../../src/jobs/job-queue.js';
import { JobStore, type NewJob } from '../../../src/jobs/job-store.js';
import { startWorker, type WorkerHandle } from '../../../src/worker/worker.js';
import { createTestEnv, destroyTestEnv, type TestEnv } from '../../executors/support/harness.js';
import { buildCustomer } from '../../support/factories.js';
import type { RepositoryAccess } from '../../support/repository-servers.js';
import {
  clearRedisPrefix,
  createCustomerDatabase,
  createTestDatabase,
  dropCustomerDatabases,
  REDIS_URL,
  redisPrefix,
  repositoryEnv,
  type TestDatabase,
} from '../../support/sandbox.js';

/** Everything a worker test needs: a database, Redis namespace, scripts' folders. */
export interface WorkerWorld {
  db: TestDatabase;
  scriptsEnv: TestEnv;
  prefix: string;
  /** Creates jobs as the api and the CLI do (queued and published). */
  store: JobStore;
  config(node: string, extra?: Record<string, string>): Config;
  customer(node: string): Promise<ICustomer>;
  startWorker(node: string, extra?: Record<string, string>): Promise<WorkerHandle>;
  enqueue(input: Omit<NewJob, 'requestedByKind'>): Promise<IBackupJob>;
  job(id: number): Promise<IBackupJob>;
  waitForJob(id: number, statuses: string[], timeoutMs?: number): Promise<IBackupJob>;
  /** Enqueues a job and waits until it has ended. */
  runJob(input: Omit<NewJob, 'requestedByKind'>, timeoutMs?: number): Promise<IBackupJob>;
  /** The environment that points restic itself at one of this world's repositories. */
  resticEnv(kind: 'manual' | 'daily'): Record<string, string>;
  /**
   * Another restic process holding a lock on a repository (`restic backup --stdin` keeps it
   * until its input ends): forget/prune have to wait for it. Call the result to let go.
   */
  holdRepository(kind: 'manual' | 'daily'): Promise<() => Promise<void>>;
  /**
   * A restore of `snapshotId` whose housekeeping is held: the manual repository is held first
   * (the undo point's retention waits for it), then the restore runs to COMPLETED while its
   * script stays at the housekeeping, under the customer's lock. Call `release` to let it end.
   */
  restoreWithHousekeepingHeld(
    customer: ICustomer,
    snapshotId: string,
  ): Promise<{ restore: IBackupJob; release: () => Promise<void> }>;
  /** Whether a script holds the customer's lock (a job, or its housekeeping after COMPLETED). */
  customerLocked(customerId: number): Promise<boolean>;
  /** Waits until no script holds the customer's lock. */
  customerIdle(customerId: number, timeoutMs?: number): Promise<void>;
  /** Every job event published for a customer, in order, with the row read at that moment. */
  recordEvents(customerId: number): Promise<{ events: { id: number }[]; stop(): Promise<void> }>;
  destroy(): Promise<void>;
}

/**
 * `scriptEnv`: extra configuration for the scripts (e.g. a longer restic lock wait).
 * `options.repositories`: the node's access to a repository host (repository-servers.ts) made
 * in `options.dir`, which becomes the data folder; default: local repositories.
 */
export async function createWorkerWorld(
  scriptEnv: Record<string, string> = {},
  options: { dir?: string; repositories?: RepositoryAccess } = {},
): Promise<WorkerWorld> {
  const db = await createTestDatabase();
  const scriptsEnv = await createTestEnv(
    { ...options.repositories?.env, ...scriptEnv },
    { dir: options.dir },
  );
  const prefix = redisPrefix();
  const queues = new Map<string, BeeQueue<QueuedJob>>();
  const workers: WorkerHandle[] = [];
  const customerIds: number[] = [];
  const redis = new Redis(REDIS_URL);

  const config = (node: string, extra: Record<string, string> = {}) =>
    parseConfig({
      BACKUPS_DATA_DIR: scriptsEnv.dataDir,
      BACKUPS_DB_NAME: db.name,
      BACKUPS_REDIS_PREFIX: prefix,
      BACKUPS_NODE: node,
      BACKUPS_WORKER_PORT: '0',
      BACKUPS_DOWNLOAD_PORT: '0',
      BACKUPS_DAILY_ENABLED: 'false',
      // indexing new backups is tested on its own (snapshot-index.test.ts)
      BACKUPS_INDEX_NEW_BACKUPS: 'false',
      BACKUPS_HEARTBEAT_SECONDS: '1',
      BACKUPS_SHUTDOWN_GRACE_SECONDS: '5',
      BACKUPS_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      ...Object.fromEntries(
        Object.entries(options.repositories?.env ?? {}).filter(([k]) => k.startsWith('BACKUPS_')),
      ),
      ...extra,
    });

  const queueFor = (host: string, lane: QueueLane) => {
    let q = queues.get(`${lane}-${host}`);
    if (!q) {
      q = producerQueue({ redisUrl: REDIS_URL, prefix }, host, lane);
      queues.set(`${lane}-${host}`, q);
    }
    return q;
  };

  const store = new JobStore({
    orm: db.orm,
    redis,
    prefix,
    queues: { for: (host, lane) => queueFor(host, lane) },
  });

  const world: WorkerWorld = {
    db,
    scriptsEnv,
    prefix,
    store,
    config,
    async customer(node) {
      const customer = await buildCustomer(db.orm.em, { host: node });
      customerIds.push(customer.id);
      await createDemoSite(scriptsEnv.customersRoot, customer.id, 'wordpress');
      await createCustomerDatabase(customer.id);
      return customer;
    },
    async startWorker(node, extra) {
      const worker = await startWorker({
        config: config(node, extra),
        scriptEnv: scriptsEnv.env,
        logger: createLogger('worker-test', 'warn'),
      });
      workers.push(worker);
      return worker;
    },
    async enqueue(input) {
      return store.create({ ...input, requestedByKind: 'operator' });
    },
    async job(id) {
      return db.orm.em.fork().findOneOrFail(BackupJob, id);
    },
    async waitForJob(id, statuses, timeoutMs = 90_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const job = await world.job(id);
        if (statuses.includes(job.status)) return job;
        if (Date.now() > until) {
          throw new Error(`job ${id} is ${job.status} (${job.phase}), not ${statuses.join('/')}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async runJob(input, timeoutMs) {
      const job = await world.enqueue(input);
      return world.waitForJob(job.id, ['completed', 'failed', 'cancelled'], timeoutMs);
    },
    resticEnv(kind) {
      return options.repositories?.resticEnv(kind) ?? repositoryEnv(scriptsEnv.dataDir, kind);
    },
    async holdRepository(kind) {
      const holder = execa(
        'restic',
        ['backup', '--stdin', '--stdin-filename', 'hold', '--tag', 'holder'],
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...world.resticEnv(kind) },
          extendEnv: false,
          reject: false,
          stdin: 'pipe',
        },
      );
      const locks = path.join(scriptsEnv.dataDir, 'repos', kind, 'locks');
      const until = Date.now() + 20_000;
      // a lock id, not restic's `<id>-tmp-<n>` that becomes it once synced and renamed
      while (!(await readdir(locks)).some((name) => /^[0-9a-f]{64}$/.test(name))) {
        if (Date.now() > until) throw new Error('the holder never took its lock');
        await new Promise((r) => setTimeout(r, 50));
      }
      return async () => {
        holder.stdin?.end('held');
        await holder;
      };
    },
    async restoreWithHousekeepingHeld(customer, snapshotId) {
      const release = await world.holdRepository('manual');
      try {
        const job = await world.enqueue({
          customer,
          kind: 'restore',
          scope: 'both',
          source: 'manual',
          snapshotId,
        });
        const restore = await world.waitForJob(job.id, ['completed', 'failed']);
        return { restore, release };
      } catch (error) {
        await release();
        throw error;
      }
    },
    async customerLocked(customerId) {
      const lock = path.join(scriptsEnv.dataDir, 'work', 'locks', `customer-${customerId}.lock`);
      return (await execa('flock', ['-n', lock, 'true'], { reject: false })).exitCode !== 0;
    },
    async customerIdle(customerId, timeoutMs = 90_000) {
      const until = Date.now() + timeoutMs;
      while (await world.customerLocked(customerId)) {
        if (Date.now() > until) throw new Error(`customer ${customerId} still locked`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async recordEvents(customerId) {
      const sub = new Redis(REDIS_URL);
      const events: { id: number }[] = [];
      sub.on('message', (_channel: string, message: string) => {
        events.push(JSON.parse(message) as { id: number });
      });
      await sub.subscribe(customerJobsTopic(prefix, customerId));
      return {
        events,
        async stop() {
          await sub.quit();
        },
      };
    },
    async destroy() {
      for (const w of workers) await w.stop().catch(() => undefined);
      for (const q of queues.values()) await q.close(1000).catch(() => undefined);
      await clearRedisPrefix(prefix, redis);
      await redis.quit();
      await dropCustomerDatabases(customerIds);
      await destroyTestEnv(scriptsEnv);
      await db.drop();
    },
  };
  return world;
}
