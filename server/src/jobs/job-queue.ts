import BeeQueue from 'bee-queue';

/** What a queued job carries: only the id of its row. The MySQL row is the truth. */
export interface QueuedJob {
  jobId: number;
}

export interface QueueOptions {
  redisUrl: string;
  prefix: string;
}

/** Each hosting node has its own queue; a customer's jobs go to its node's queue. */
export function queueName(host: string): string {
  return `jobs-${host}`;
}

function redisSettings(redisUrl: string) {
  // Bee-Queue speaks node_redis 3, which takes a url; ioredis is kept for pub/sub.
  return { url: redisUrl };
}

/** A queue that only adds jobs (the api, the CLI, the scheduler). */
export function producerQueue(options: QueueOptions, host: string): BeeQueue<QueuedJob> {
  return new BeeQueue<QueuedJob>(queueName(host), {
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
export function workerQueue(options: QueueOptions, host: string): BeeQueue<QueuedJob> {
  return new BeeQueue<QueuedJob>(queueName(host), {
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

  for(host: string): BeeQueue<QueuedJob> {
    let queue = this.queues.get(host);
    if (!queue) {
      queue = producerQueue(this.options, host);
      this.queues.set(host, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close(2_000)));
    this.queues.clear();
  }
}
