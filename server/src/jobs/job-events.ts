import type { Redis } from 'ioredis';

/**
 * Job change notifications over Redis pub/sub. The payload carries ids only (never the job's
 * data): subscribers re-read the row and authorise the viewer for every event. The channel
 * names are the topics of the api's graphql-yoga pub/sub (createPubSub + Redis event target),
 * which publishes/receives JSON of the payload on a channel named after the topic.
 */
export interface JobChanged {
  id: number;
  customerId: number;
  /** When it was published (ms since the epoch): the api measures the delivery from it. */
  at?: number;
}

export function jobTopic(prefix: string, jobId: number | string): string {
  return `${prefix}:jobUpdated:${jobId}`;
}

export function customerJobsTopic(prefix: string, customerId: number | string): string {
  return `${prefix}:customerJobs:${customerId}`;
}

export async function publishJobChanged(
  redis: Redis,
  prefix: string,
  event: JobChanged,
): Promise<void> {
  const payload = JSON.stringify({ id: event.id, customerId: event.customerId, at: Date.now() });
  await redis
    .multi()
    .publish(jobTopic(prefix, event.id), payload)
    .publish(customerJobsTopic(prefix, event.customerId), payload)
    .exec();
}
