import { createRequire } from 'node:module';
import BeeQueue from 'bee-queue';
import type { IBackupJob } from './job.entity.js';
import { taskFor } from './tasks/index.js';

/** What a queued job carries: only the id of its row. The MySQL row is the truth. */
export interface QueuedJob {
  jobId: number;
}

export interface QueueOptions {
  redisUrl: string;
  prefix: string;
  /**
   * Told of the errors a queue's Redis connection emits while Redis is away (it reconnects by
   * itself); default: none, the calls that fail meanwhile reject anyway.
   */
  onError?: (error: Error) => void;
}

/**
 * Bee-Queue emits 'error' on the queue when its Redis connection fails (Redis stopped or
 * restarted), again at every reconnect attempt. An 'error' event nobody listens to is thrown
 * by Node and ends the process: the api, the CLI and the worker died with Redis. Every queue
 * gets its listener when it is made, before anything can fail.
 */
export function listenForErrors<Q extends BeeQueue>(
  queue: Q,
  options: Pick<QueueOptions, 'onError'>,
): Q {
  queue.on('error', (error) => options.onError?.(error));
  // A Redis that was restarted has lost the queue's Lua scripts (Bee-Queue loads them once,
  // at ready, and calls them by sha): every later call would fail with NOSCRIPT. They are
  // loaded again at each reconnect; enqueueJob retries a call that raced the reload.
  void queue.ready().then(
    () =>
      clientOf(queue)?.on('ready', () => {
        reloadScripts(queue).catch((error: Error) => options.onError?.(error));
      }),
    () => undefined,
  );
  return queue;
}

// Bee-Queue's own script loader (SCRIPT EXISTS, then SCRIPT LOAD of the missing ones).
const beeLua = createRequire(import.meta.url)('bee-queue/lib/lua/index.js') as {
  buildCache(client: unknown): Promise<unknown>;
};

interface RedisClientLike {
  on(event: 'ready', fn: () => void): unknown;
}

const clientOf = (queue: BeeQueue): RedisClientLike | undefined =>
  (queue as unknown as { client?: RedisClientLike }).client;

function reloadScripts(queue: BeeQueue): Promise<unknown> {
  const client = clientOf(queue);
  return client ? beeLua.buildCache(client) : Promise.resolve();
}

const isNoScript = (error: unknown) => error instanceof Error && /NOSCRIPT/.test(error.message);

/**
 * Each hosting node has two queues: `jobs` for what customers, integrators and operators ask
 * for (backups, restores), `daily` for the node's nightly backups. With one FIFO queue, a
 * customer whose site was hacked at 02:05 would have their restore wait behind the whole
 * night's batch; the worker takes from both, the daily lane with fewer slots. A third, `index`,
 * holds the jobs that read a snapshot's file list for browsing (DESIGN.md §10): they wait
 * behind neither.
 * Downloads (an archive of a big site can take an hour to build) have a lane of their own for
 * the same reason.
 */
export type QueueLane = 'jobs' | 'daily' | 'index' | 'downloads';

export function queueName(host: string, lane: QueueLane = 'jobs'): string {
  return `${lane}-${host}`;
}

/** The lane of a job, as its task says (the schedule's daily backups, or everything else). */
export function laneOf(job: Pick<IBackupJob, 'kind' | 'source'>): QueueLane {
  return taskFor(job.kind).lane(job);
}

function redisSettings(redisUrl: string) {
  // Bee-Queue speaks node_redis 3, which takes a url; ioredis is kept for pub/sub.
  return { url: redisUrl };
}

/** A queue that only adds jobs (the api, the CLI, the scheduler). */
export function producerQueue(
  options: QueueOptions,
  host: string,
  lane: QueueLane = 'jobs',
): BeeQueue<QueuedJob> {
  const queue = new BeeQueue<QueuedJob>(queueName(host, lane), {
    prefix: options.prefix,
    redis: redisSettings(options.redisUrl),
    isWorker: false,
    getEvents: false,
    sendEvents: false,
    activateDelayedJobs: false,
    removeOnSuccess: true,
    removeOnFailure: true,
  });
  return listenForErrors(queue, options);
}

/** The worker's side of a node's queue. */
export function workerQueue(
  options: QueueOptions,
  host: string,
  lane: QueueLane = 'jobs',
): BeeQueue<QueuedJob> {
  const queue = new BeeQueue<QueuedJob>(queueName(host, lane), {
    prefix: options.prefix,
    redis: redisSettings(options.redisUrl),
    isWorker: true,
    getEvents: false,
    sendEvents: false,
    activateDelayedJobs: true,
    removeOnSuccess: true,
    removeOnFailure: true,
    stallInterval: 10_000,
  });
  return listenForErrors(queue, options);
}

/**
 * Adds the job with its row id as the Bee-Queue id, so enqueueing twice (recovery after a
 * Redis flush, a retry) never runs it twice.
 */
export async function enqueueJob(queue: BeeQueue<QueuedJob>, jobId: number): Promise<void> {
  await withScripts(queue, () => queue.createJob({ jobId }).setId(String(jobId)).save());
}

/**
 * Runs a call of the queue's that uses its scripts; when Redis was restarted and the scripts
 * are not loaded again yet (NOSCRIPT), loads them and runs it once more.
 */
export async function withScripts<T>(queue: BeeQueue, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!isNoScript(error)) throw error;
    await reloadScripts(queue);
    return call();
  }
}

/**
 * Bee-Queue's stalled-jobs check on each queue every intervalMs, on a timer of our own rather
 * than Bee-Queue's interval mode: there, a check that fails (a Redis just restarted has lost
 * the scripts until they are loaded again: NOSCRIPT) leaves a rejected promise nobody handles,
 * and the worker ended with it (the chaos soak). Here a NOSCRIPT loads the scripts and checks
 * again (withScripts); any other failure goes to onError. A check still waiting for Redis is
 * not doubled.
 */
export function startStallChecks(
  queues: BeeQueue[],
  intervalMs: number,
  onError: (error: unknown) => void,
): { stop(): void } {
  let running = false;
  const check = async () => {
    if (running) return;
    running = true;
    try {
      await Promise.all(
        queues.map((q) => withScripts(q, () => q.checkStalledJobs()).catch(onError)),
      );
    } finally {
      running = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** A cache of producer queues, one per host. */
export class QueueRegistry {
  private readonly queues = new Map<string, BeeQueue<QueuedJob>>();
  constructor(private readonly options: QueueOptions) {}

  for(host: string, lane: QueueLane = 'jobs'): BeeQueue<QueuedJob> {
    const key = queueName(host, lane);
    let queue = this.queues.get(key);
    if (!queue) {
      queue = producerQueue(this.options, host, lane);
      this.queues.set(key, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close(2_000)));
    this.queues.clear();
  }
}
