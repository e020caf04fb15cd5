import BeeQueue from 'bee-queue';
import { listenForErrors, type QueueOptions, withScripts } from '../jobs/job-queue.js';
import type { QueuedMessage } from './webhook-outbox.js';

/** What a queued delivery carries: the outbox row's id (the row is the truth). */
export interface QueuedDelivery {
  messageId: number;
}

export function webhookQueueName(node: string): string {
  return `webhooks-${node}`;
}

/** One queue per node; the worker of that node delivers (`isWorker` true for it). */
export function webhookQueue(
  options: QueueOptions,
  node: string,
  isWorker: boolean,
): BeeQueue<QueuedDelivery> {
  const queue = new BeeQueue<QueuedDelivery>(webhookQueueName(node), {
    prefix: options.prefix,
    redis: { url: options.redisUrl },
    isWorker,
    getEvents: false,
    sendEvents: false,
    activateDelayedJobs: isWorker,
    // retries in tests are sub-second; the default 1 s debounce would dominate them
    delayedDebounce: 50,
    removeOnSuccess: true,
    removeOnFailure: true,
    stallInterval: 30_000,
  });
  return listenForErrors(queue, options);
}

/**
 * Queues an attempt of a message, at once or at `at`. The Bee-Queue id names the message and
 * the attempt, so the sweep queueing a message again while its entry still exists adds nothing.
 */
export async function enqueueDelivery(
  queue: BeeQueue<QueuedDelivery>,
  messageId: number,
  attempt: number,
  at?: Date,
): Promise<void> {
  await withScripts(queue, () => {
    const job = queue.createJob({ messageId }).setId(`${messageId}-${attempt}`);
    if (at && at.getTime() > Date.now()) job.delayUntil(at);
    return job.save();
  });
}

/** Where the job store and the api queue deliveries: a producer queue per node. */
export interface DeliveryQueues {
  /** `replace`: an entry already queued for that attempt (a later retry) is taken off first. */
  enqueue(messages: readonly QueuedMessage[], attempt?: number, replace?: boolean): Promise<void>;
  close(): Promise<void>;
}

export function deliveryQueues(
  options: QueueOptions,
  own?: { node: string; queue: BeeQueue<QueuedDelivery> },
): DeliveryQueues {
  const queues = new Map<string, BeeQueue<QueuedDelivery>>();
  const queueOf = (node: string) => {
    if (own && own.node === node) return own.queue;
    let queue = queues.get(node);
    if (!queue) {
      queue = webhookQueue(options, node, false);
      queues.set(node, queue);
    }
    return queue;
  };
  return {
    async enqueue(messages, attempt = 0, replace = false) {
      for (const message of messages) {
        const queue = queueOf(message.node);
        if (replace) await queue.removeJob(`${message.id}-${attempt}`).catch(() => undefined);
        await enqueueDelivery(queue, message.id, attempt);
      }
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close(2_000)));
      queues.clear();
    },
  };
}
