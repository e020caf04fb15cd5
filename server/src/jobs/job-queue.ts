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
}

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
  return new BeeQueue<QueuedJob>(queueName(host, lane), {
    prefix: options.prefix,
    redis: redisSettings(options.redisUrl),
    isWorker: false,
    getEvents: false,
    sendEvents: false,
    activateDelayedJobs: false,
    removeOnSuccess: true,
    removeOnFailure: true,
  });
}

/** The worker's side of a node's queue. */
export function workerQueue(
  options: QueueOptions,
  host: string,
  lane: QueueLane = 'jobs',
): BeeQueue<QueuedJob> {
  return new BeeQueue<QueuedJob>(queueName(host, lane), {
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
}

/**
 * Adds the job with its row id as the Bee-Queue id, so enqueueing twice (recovery after a
 * Redis flush, a retry) never runs it twice.
 */
export async function enqueueJob(queue: BeeQueue<QueuedJob>, jobId: number): Promise<void> {
  await queue.createJob({ jobId }).setId(String(jobId)).save();
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
