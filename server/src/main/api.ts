import cluster, { type Worker } from 'node:cluster';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { config } from '../config/config.js';
import { createLogger } from '../infra/logger.js';

const cfg = config();
const METRICS_ASK = 'backups:metrics-ask';
const METRICS_ANSWER = 'backups:metrics-answer';
const METRICS_DUMP = 'backups:metrics-dump';
const METRICS_DUMP_ANSWER = 'backups:metrics-dump-answer';
const logger = createLogger('api', cfg.BACKUPS_LOG_LEVEL);

/** On the first SIGTERM or SIGINT: `stop`, then exit 0 (1 if it failed). */
function stopOn(what: string, stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, `stopping ${what}`);
      stop().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'stop failed');
          process.exit(1);
        },
      );
    });
  }
}

if (cfg.BACKUPS_API_PROCESSES > 1 && cluster.isPrimary) {
  // Several api processes behind one port (node:cluster: the primary accepts and hands each
  // connection to a process in turn). Each is a whole api: its own pools, and its own Redis
  // subscriber, so a job's events reach the sockets of every process.
  let stopping = false;
  const fork = () => {
    const child = cluster.fork();
    child.once('exit', (code, signal) => {
      if (stopping) return;
      logger.error(
        { pid: child.process.pid, code, signal },
        'an api process exited; starting another',
      );
      setTimeout(fork, 1000);
    });
  };
  for (let i = 0; i < cfg.BACKUPS_API_PROCESSES; i++) fork();
  // /metrics reaches one process (the port is shared): it asks here for all of theirs together,
  // summed by prom-client's AggregatorRegistry.aggregate. Only processes that listen are asked:
  // one still starting (a replacement, or the second on a loaded host) has no registry to answer
  // from, and waiting for it made /metrics fail with 500 until it was up.
  const { AggregatorRegistry } = await import('prom-client');
  const listening = new Set<number>();
  cluster.on('listening', (child) => listening.add(child.id));
  cluster.on('exit', (child) => listening.delete(child.id));
  let asked = 0;
  const metricsOf = (child: Worker) =>
    new Promise<MetricObjectWithValues<MetricValue<string>>[] | null>((resolve) => {
      const id = ++asked;
      const timer = setTimeout(() => done(null), 5_000);
      const onMessage = (message: { type?: string; id?: number; metrics?: unknown }) => {
        if (message?.type === METRICS_DUMP_ANSWER && message.id === id)
          done(message.metrics as MetricObjectWithValues<MetricValue<string>>[]);
      };
      const done = (metrics: MetricObjectWithValues<MetricValue<string>>[] | null) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(metrics);
      };
      child.on('message', onMessage);
      child.send({ type: METRICS_DUMP, id });
    });
  cluster.on('message', (child, message: { type?: string; id?: number }) => {
    if (message?.type !== METRICS_ASK) return;
    const children = Object.values(cluster.workers ?? {}).filter(
      (c): c is Worker => c !== undefined && listening.has(c.id),
    );
    Promise.all(children.map(metricsOf))
      .then(async (answers) => {
        const silent = answers.filter((a) => a === null).length;
        if (silent) logger.warn({ silent }, 'api processes that did not report their metrics');
        const metrics = answers.filter((a) => a !== null);
        return metrics.length ? AggregatorRegistry.aggregate(metrics).metrics() : null;
      })
      .then(
        (body) => child.send({ type: METRICS_ANSWER, id: message.id, body }),
        (error: unknown) => {
          logger.warn({ err: error }, 'the api processes did not report their metrics');
          child.send({ type: METRICS_ANSWER, id: message.id, body: null });
        },
      );
  });
  stopOn('the api processes', async () => {
    stopping = true;
    const children = Object.values(cluster.workers ?? {}).filter((child) => child !== undefined);
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.process.kill('SIGTERM');
          }),
      ),
    );
  });
} else {
  // Loaded only where it serves: the primary of several processes never builds the app.
  const { buildApp } = await import('../api/app.js');
  const inCluster = cluster.isWorker;
  const app = buildApp({
    config: cfg,
    logger,
    metricsText: inCluster ? clusterMetricsText : undefined,
  });
  if (inCluster) {
    // The primary's request for this process's metrics (to sum them with the others').
    process.on('message', (message: { type?: string; id?: number }) => {
      if (message?.type !== METRICS_DUMP) return;
      app.metrics.registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: METRICS_DUMP_ANSWER, id: message.id, metrics }),
        () => process.send?.({ type: METRICS_DUMP_ANSWER, id: message.id, metrics: null }),
      );
    });
  }
  await app.start();
  stopOn('the api', () => app.stop());
}

/** One api process of several: the metrics of all of them, summed by the primary. */
async function clusterMetricsText(): Promise<{ contentType: string; body: string }> {
  const { Registry } = await import('prom-client');
  const id = Math.random();
  const body = await new Promise<string | null>((resolve) => {
    const onMessage = (message: { type?: string; id?: number; body?: string | null }) => {
      if (message?.type !== METRICS_ANSWER || message.id !== id) return;
      process.off('message', onMessage);
      resolve(message.body ?? null);
    };
    process.on('message', onMessage);
    process.send?.({ type: METRICS_ASK, id });
  });
  if (body === null) throw new Error('the api processes did not report their metrics');
  return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body };
}
