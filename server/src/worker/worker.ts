import type { Server } from 'node:http';
import { MikroORM } from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import pLimit from 'p-limit';
import type { Config } from '../config/config.js';
import { ormOptions } from '../db/orm.js';
import { startDownloadServer } from '../downloads/download-server.js';
import { startDownloadSweeper } from '../downloads/download-sweeper.js';
import { ScriptRunner } from '../executors/script-runner.js';
import { RedisLease } from '../infra/lease.js';
import { createLogger, type Logger } from '../infra/logger.js';
import { createRedis } from '../infra/redis.js';
import { type QueuedJob, workerQueue } from '../jobs/job-queue.js';
import { JobStore } from '../jobs/job-store.js';
import { perCustomerSources, syncCatalog } from '../snapshots/catalog-sync.js';
import { DailySchedule } from './daily-schedule.js';
import { DeferredRetention } from './deferred-retention.js';
import { startHealthServer } from './health-server.js';
import { JobRunner } from './job-runner.js';
import { JobMetrics } from './metrics.js';
import { finishLeftoverRestores, recoverNode } from './recovery.js';
import { maintainRepository } from './repository-maintenance.js';

export interface WorkerOptions {
  config: Config;
  /** Extra environment for the scripts (tests point them at their own folders). */
  scriptEnv?: Record<string, string>;
  logger?: Logger;
  /** Sync the catalog from the repositories on start (default true). */
  syncOnStart?: boolean;
}

export interface WorkerHandle {
  port: number;
  /** Where the node's download links are served (behind nginx). */
  downloadPort: number;
  /** Deletes expired and revoked archives now (also on a timer). */
  sweepDownloads(): Promise<number>;
  runner: JobRunner;
  scripts: ScriptRunner;
  orm: MikroORM;
  retention: DeferredRetention;
  syncCatalog(): ReturnType<typeof syncCatalog>;
  stop(): Promise<void>;
}

/**
 * The worker of one hosting node: holds the node's lease (one worker per node), recovers what
 * a previous worker left, then takes jobs from the node's queue and runs the daily schedule.
 */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const cfg = options.config;
  const logger = options.logger ?? createLogger('worker', cfg.BACKUPS_LOG_LEVEL);
  const node = cfg.BACKUPS_NODE;
  const prefix = cfg.BACKUPS_REDIS_PREFIX;
  const orm = await MikroORM.init(ormOptions({ ...cfg, poolMax: 5 }));
  const redis = createRedis(cfg.BACKUPS_REDIS_URL, `worker-${node}`);
  const lease = new RedisLease(redis, `${prefix}:worker:${node}`, 10_000);
  if (!(await lease.acquire(30_000))) {
    await redis.quit();
    await orm.close(true);
    throw new Error(`another worker holds node ${node}`);
  }
  const scripts = new ScriptRunner({
    scriptsDir: cfg.BACKUPS_SCRIPTS_DIR,
    prefix: cfg.BACKUPS_SCRIPT_PREFIX,
    env: options.scriptEnv,
    logger,
  });
  const metrics = new JobMetrics();
  const retention = new DeferredRetention({ orm, scripts, logger });
  const queues = {
    jobs: workerQueue({ redisUrl: cfg.BACKUPS_REDIS_URL, prefix }, node, 'jobs'),
    daily: workerQueue({ redisUrl: cfg.BACKUPS_REDIS_URL, prefix }, node, 'daily'),
    downloads: workerQueue({ redisUrl: cfg.BACKUPS_REDIS_URL, prefix }, node, 'downloads'),
  };
  // The worker creates jobs only on its own node (the daily schedule).
  const store = new JobStore({
    orm,
    redis,
    prefix,
    queues: {
      for: (host, lane) => {
        if (host !== node) throw new Error(`the worker of ${node} does not queue for ${host}`);
        return queues[lane];
      },
    },
  });
  const runner = new JobRunner({
    onRetentionDeferred: (customerId, source) => retention.add(customerId, source),
    orm,
    store,
    scripts,
    logger,
    metrics,
    config: cfg,
  });
  /** Waiting, active and delayed jobs of every lane together. */
  const queueCounts = async () => {
    const lanes = await Promise.all(Object.values(queues).map((q) => q.checkHealth()));
    const sum = (state: 'waiting' | 'active' | 'delayed') =>
      lanes.reduce((n, lane) => n + lane[state], 0);
    return { waiting: sum('waiting'), active: sum('active'), delayed: sum('delayed') };
  };
  for (const q of Object.values(queues)) {
    await q.ready();
    q.on('error', (error) => logger.error({ err: error }, 'queue error'));
  }

  await recoverNode({ orm, store, node, queues, scripts, logger });

  const shutdown = new AbortController();
  let stopping = false;
  // BACKUPS_WORKER_CONCURRENCY scripts at most, from both lanes; the daily lane may hold all but
  // one of them (at least one), so a customer's own backup or restore never waits for more than
  // the daily jobs already running, not for the whole night's batch.
  const concurrency = cfg.BACKUPS_WORKER_CONCURRENCY;
  const slots = pLimit(concurrency);
  const handle = async (job: BeeQueue.Job<QueuedJob>) => {
    if (stopping) return;
    await slots(() => (stopping ? undefined : runner.run(job.data.jobId, shutdown.signal)));
  };
  queues.jobs.process(concurrency, handle);
  queues.daily.process(Math.max(1, concurrency - 1), handle);
  // Download builds likewise leave a slot for what customers are waiting on at their site.
  queues.downloads.process(Math.max(1, concurrency - 1), handle);

  const syncOnly = () =>
    syncCatalog({ orm, scripts, logger, node, perCustomer: perCustomerSources(cfg) });
  // Every later sync first finishes leftover restores (recoverNode has just done so at start).
  const sync = async () => {
    if (!stopping) await finishLeftoverRestores({ orm, store, scripts, logger });
    return syncOnly();
  };
  if (options.syncOnStart !== false) {
    await syncOnly().catch((error: unknown) => logger.error({ err: error }, 'catalog sync failed'));
  }
  const syncTimer = setInterval(
    () =>
      void sync().catch((error: unknown) => logger.error({ err: error }, 'catalog sync failed')),
    cfg.BACKUPS_CATALOG_SYNC_MINUTES * 60_000,
  );
  syncTimer.unref();

  // Weekly, after Sunday's daily backups: reclaim the space that retention freed.
  const weekly = async (day: Date) => {
    if (day.getDay() !== 0) return;
    // after the night's backups: pruning holds the repository exclusively
    const until = Date.now() + 6 * 3600_000;
    for (;;) {
      const health = await queueCounts();
      if ((health.waiting === 0 && health.active === 0) || Date.now() > until || stopping) break;
      await new Promise((resolve) => setTimeout(resolve, 30_000));
    }
    if (stopping) return;
    for (const kind of ['daily', 'manual'] as const) {
      await maintainRepository({ redis, prefix, scripts, logger }, kind, 'prune');
    }
  };
  const schedule = new DailySchedule(
    { orm, redis, prefix, node, store, logger },
    cfg.BACKUPS_DAILY_AT,
    weekly,
  );
  if (cfg.BACKUPS_DAILY_ENABLED) schedule.start();

  const health = await startHealthServer(cfg.BACKUPS_WORKER_HOST, cfg.BACKUPS_WORKER_PORT, {
    live: () => !stopping,
    ready: async () => {
      if (stopping) return false;
      await orm.em.getConnection().execute('select 1');
      return (await redis.ping()) === 'PONG';
    },
    metrics: async () => {
      metrics.jobsByStatus.reset();
      for (const row of await store.countsOnNode(node)) {
        metrics.jobsByStatus.set({ status: row.status }, row.n);
      }
      const counts = await queueCounts();
      for (const state of ['waiting', 'active', 'delayed'] as const) {
        metrics.queueDepth.set({ state }, counts[state]);
      }
      return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
    },
  });
  const downloads = await startDownloadServer({ orm, config: cfg, logger });
  const sweeper = startDownloadSweeper({ orm, config: cfg, logger });
  logger.info(
    {
      node,
      port: health.port,
      downloadPort: downloads.port,
      concurrency: cfg.BACKUPS_WORKER_CONCURRENCY,
    },
    'worker ready',
  );

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      schedule.stop();
      retention.stop();
      clearInterval(syncTimer);
      const graceMs = cfg.BACKUPS_SHUTDOWN_GRACE_SECONDS * 1000;
      // Running jobs get the grace period to finish; then their scripts get SIGTERM, roll
      // back, and the jobs go back to PENDING for the next start.
      const abortTimer = setTimeout(() => shutdown.abort(), graceMs);
      await Promise.all(
        Object.values(queues).map((q) =>
          q.close(graceMs + 120_000).catch((error: unknown) => {
            logger.warn({ err: error }, 'queue did not close cleanly');
          }),
        ),
      );
      clearTimeout(abortTimer);
      sweeper.stop();
      await downloads.close();
      await new Promise<void>((resolve) => (health.server as Server).close(() => resolve()));
      await lease.release().catch(() => undefined);
      await redis.quit();
      await orm.close(true);
      logger.info('worker stopped');
    })();
    return stopped;
  };
  return {
    port: health.port,
    downloadPort: downloads.port,
    sweepDownloads: sweeper.sweep,
    runner,
    scripts,
    orm,
    retention,
    syncCatalog: sync,
    stop,
  };
}
