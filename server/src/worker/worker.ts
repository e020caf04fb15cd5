import { readdir, rm, statfs } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { MikroORM } from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import pLimit from 'p-limit';
import { type Config, repositoryModeOf } from '../config/config.js';
import { ormOptions } from '../db/orm.js';
import { startDownloadServer } from '../downloads/download-server.js';
import { startDownloadSweeper } from '../downloads/download-sweeper.js';
import { ScriptRunner } from '../executors/script-runner.js';
import { RedisLease } from '../infra/lease.js';
import { createLogger, type Logger } from '../infra/logger.js';
import { createRedis } from '../infra/redis.js';
import { type QueuedJob, startStallChecks, workerQueue } from '../jobs/job-queue.js';
import { JobStore } from '../jobs/job-store.js';
import { MailDeliverer } from '../notifications/mail-deliverer.js';
import { nodeFigures } from '../ops/node-status.js';
import { perCustomerSources, syncCatalog } from '../snapshots/catalog-sync.js';
import { evictUnreadIndexes } from '../snapshots/snapshot-index.js';
import { WebhookDeliverer } from '../webhooks/webhook-deliverer.js';
import { deliveryQueues, webhookQueue } from '../webhooks/webhook-queue.js';
import { Alerts } from './alerts.js';
import { DailySchedule } from './daily-schedule.js';
import { DeferredRetention } from './deferred-retention.js';
import { startHealthServer } from './health-server.js';
import { JobRunner, workerScratch } from './job-runner.js';
import { JobMetrics } from './metrics.js';
import { finishLeftoverRestores, recoverNode, removeLeftoverDrills } from './recovery.js';
import { checkRepositoryData, checkSubset } from './repository-check.js';
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
  schedule: DailySchedule;
  orm: MikroORM;
  retention: DeferredRetention;
  /** The node's webhook deliveries (tests run its sweep). */
  webhooks: WebhookDeliverer;
  syncCatalog(): ReturnType<typeof syncCatalog>;
  stop(): Promise<void>;
}

/**
 * The worker of one hosting node: holds the node's lease (one worker per node), recovers what
 * a previous worker left, then takes jobs from the node's queue and runs the daily schedule.
 */
/** How often the queues' stalled entries are looked for (Bee-Queue's stallInterval). */
const STALL_CHECK_MS = 10_000;
/** How many times a sync asked for soon is tried again when it fails (5 s, 10 s, ... 80 s later). */
const SOON_SYNC_RETRIES = 4;

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
  const metrics = new JobMetrics(node);
  const scripts = new ScriptRunner({
    scriptsDir: cfg.BACKUPS_SCRIPTS_DIR,
    prefix: cfg.BACKUPS_SCRIPT_PREFIX,
    env: options.scriptEnv,
    logger,
    observer: metrics,
  });
  const alerts = new Alerts({ redis, prefix, logger, metrics });
  const retention = new DeferredRetention({ orm, scripts, logger });
  const queueOptions = {
    redisUrl: cfg.BACKUPS_REDIS_URL,
    prefix,
    onError: (error: Error) => logger.error({ err: error }, 'queue error'),
  };
  const queues = {
    jobs: workerQueue(queueOptions, node, 'jobs'),
    daily: workerQueue(queueOptions, node, 'daily'),
    index: workerQueue(queueOptions, node, 'index'),
    downloads: workerQueue(queueOptions, node, 'downloads'),
  };
  const hooks = webhookQueue(queueOptions, node, true);
  const deliveries = deliveryQueues(queueOptions, { node, queue: hooks });
  // The worker creates jobs only on its own node (the daily schedule).
  const store = new JobStore({
    orm,
    redis,
    prefix,
    deliveries,
    onWriteRetry: (error, attempt) =>
      logger.warn({ err: error, attempt }, 'the database is away: a job write is tried again'),
    queues: {
      for: (host, lane) => {
        if (host !== node) throw new Error(`the worker of ${node} does not queue for ${host}`);
        return queues[lane];
      },
    },
  });
  const runner = new JobRunner({
    onRetentionDeferred: (customerId, source) => retention.add(customerId, source),
    onHousekeepingFailed: () => syncSoon(),
    onFailed: (job, customerId, code) => {
      // A daily backup that found the repository down is tried again in the schedule's next round.
      if (job.kind === 'backup' && job.source === 'daily' && code === 'REPOSITORY_UNAVAILABLE') {
        schedule.retryLater(customerId);
      }
      // A failed job that writes snapshots may still have made one its script could not report
      // (restic stored it, then the script could not read restic's answer: its disk full, say):
      // the catalog is compared with the repositories soon, not at the next hourly sync, so the
      // snapshot is listed (and counted by retention) rather than left unseen.
      if (job.kind === 'backup' || job.kind === 'restore') syncSoon();
    },
    orm,
    store,
    scripts,
    logger,
    metrics,
    alerts,
    config: cfg,
  });
  /** Waiting, active and delayed jobs of each lane. */
  const laneCounts = async () =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(queues).map(async ([lane, q]) => [lane, await q.checkHealth()] as const),
      ),
    );
  /** Waiting, active and delayed jobs of every lane together. */
  const queueCounts = async () => {
    const all = Object.values(await laneCounts());
    const sum = (key: 'waiting' | 'active' | 'delayed') =>
      all.reduce((total, health) => total + health[key], 0);
    return { waiting: sum('waiting'), active: sum('active'), delayed: sum('delayed') };
  };
  for (const q of Object.values(queues)) await q.ready();
  // An entry a worker had taken but not finished when it was killed stays in Bee-Queue's
  // active list: queueing its job again at recovery adds nothing (same id), so a job PENDING
  // then was never run. The stall check puts such entries back (the row decides: a job is
  // claimed only while PENDING, so nothing runs twice).
  // (not Bee-Queue's interval mode: a failed check there ended the worker, see job-queue.ts)
  const stallChecks = startStallChecks(Object.values(queues), STALL_CHECK_MS, (error) =>
    logger.warn({ err: error }, 'the stalled-jobs check failed'),
  );

  await recoverNode({ orm, store, node, queues, scripts, logger });
  await hooks.ready();
  const deliverer = new WebhookDeliverer({ orm, config: cfg, logger, node, queue: hooks });
  deliverer.start();
  const mail = cfg.BACKUPS_SMTP_URL
    ? new MailDeliverer({ orm, config: cfg, logger, node }, cfg.BACKUPS_SMTP_URL)
    : null;
  mail?.start();
  // Argument files a killed worker left (its scripts are gone: this worker holds the node).
  const scratch = await workerScratch(cfg);
  for (const leftover of await readdir(scratch)) {
    await rm(path.join(scratch, leftover), { recursive: true, force: true });
  }

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
  // Indexing reads the repository only: one at a time on the node, outside the slots above,
  // so browsing a backup never waits behind the night's batch nor holds up a restore.
  queues.index.process(1, async (job: BeeQueue.Job<QueuedJob>) => {
    if (!stopping) await runner.run(job.data.jobId, shutdown.signal);
  });
  // Download builds likewise leave a slot for what customers are waiting on at their site.
  queues.downloads.process(Math.max(1, concurrency - 1), handle);

  const evictIndexes = () =>
    evictUnreadIndexes(orm.em.fork(), node, cfg.BACKUPS_INDEX_KEEP_DAYS).then((n) => {
      if (n) logger.info({ evicted: n }, 'unread snapshot indexes dropped');
    });
  const syncOnly = async () => {
    await evictIndexes().catch((error: unknown) =>
      logger.error({ err: error }, 'dropping unread indexes failed'),
    );
    return syncCatalog({ orm, scripts, logger, node, perCustomer: perCustomerSources(cfg) });
  };
  // After a job's housekeeping failed (a forget killed half-way, say): one sync a few seconds
  // later, however many ask for it meanwhile.
  // A sync that fails (a repository away) is tried again a few times, further apart.
  let syncPending: NodeJS.Timeout | undefined;
  const syncSoon = (attempt = 0) => {
    if (syncPending || stopping) return;
    syncPending = setTimeout(
      () => {
        syncPending = undefined;
        if (stopping) return;
        void syncOnly().catch((error: unknown) => {
          logger.error({ err: error }, 'catalog sync failed');
          if (attempt < SOON_SYNC_RETRIES) syncSoon(attempt + 1);
        });
      },
      5_000 * 2 ** attempt,
    );
    syncPending.unref();
  };
  // Every later sync first finishes leftover restores and removes leftover drills (a clean-up
  // that met a database server down for long); recoverNode has just done so at start.
  const sync = async () => {
    if (!stopping) await finishLeftoverRestores({ orm, store, scripts, logger });
    if (!stopping) await removeLeftoverDrills({ scripts, logger });
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
      // An append-only repository cannot be pruned from here: the maintainer prunes it.
      if (repositoryModeOf(cfg, kind) === 'append-only') continue;
      await maintainRepository({ redis, prefix, scripts, logger, metrics }, kind, 'prune');
    }
    // Then this week's share of each repository's data is read back and verified.
    const subset = checkSubset(day, cfg.BACKUPS_CHECK_WEEKS);
    for (const kind of ['daily', 'manual'] as const) {
      if (stopping) return;
      await checkRepositoryData(
        {
          redis,
          prefix,
          scripts,
          logger,
          em: orm.em.fork(),
          actor: { kind: 'operator', id: `worker:${node}` },
          alerts,
          onResult: (check) => {
            if (check.outcome !== 'ok' && check.outcome !== 'failed') return;
            metrics.repositoryCheck.set({ repository: kind }, check.outcome === 'ok' ? 1 : 0);
            metrics.repositoryCheckPacks.set({ repository: kind }, check.packs ?? 0);
          },
        },
        kind,
        subset,
      ).catch((error: unknown) => logger.error({ err: error }, 'repository check failed'));
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
      const [figures, lanes] = await Promise.all([
        nodeFigures(orm.em.fork(), node),
        laneCounts(),
        ...Object.entries({
          customers: cfg.BACKUPS_CUSTOMERS_ROOT,
          data: cfg.BACKUPS_DATA_DIR,
        }).map(async ([filesystem, dir]) => {
          const fs = await statfs(dir).catch(() => null);
          if (!fs) return;
          metrics.freeBytes.set({ filesystem }, fs.bavail * fs.bsize);
          metrics.sizeBytes.set({ filesystem }, fs.blocks * fs.bsize);
        }),
      ]);
      metrics.jobsByStatus.reset();
      for (const row of figures.jobs) {
        metrics.jobsByStatus.set({ kind: row.kind, status: row.status }, row.n);
      }
      metrics.customers.set(figures.customers);
      metrics.dailyStale.set(figures.staleCustomers);
      metrics.dailyLastSuccess.set((figures.dailyLastSuccessAt?.getTime() ?? 0) / 1000);
      for (const [lane, at] of Object.entries(figures.oldestPendingAt)) {
        const age = at ? Math.max(0, (Date.now() - at.getTime()) / 1000) : 0;
        metrics.oldestPendingAge.set({ lane }, age);
      }
      for (const [lane, counts] of Object.entries(lanes)) {
        for (const state of ['waiting', 'active', 'delayed'] as const) {
          metrics.queueDepth.set({ lane, state }, counts[state]);
        }
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
      stallChecks.stop();
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
      deliverer.stop();
      await mail?.stop();
      await hooks.close(cfg.BACKUPS_WEBHOOK_TIMEOUT_SECONDS * 1000 + 5_000).catch(() => undefined);
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
    runner,
    scripts,
    schedule,
    orm,
    retention,
    webhooks: deliverer,
    downloadPort: downloads.port,
    sweepDownloads: sweeper.sweep,
    syncCatalog: sync,
    stop,
  };
}
