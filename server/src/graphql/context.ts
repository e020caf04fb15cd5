import type { EntityManager, MikroORM } from '@mikro-orm/mariadb';
import type { PubSub } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import type { BearerCache } from '../auth/bearer-cache.js';
import type { Viewer } from '../auth/viewer.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../infra/logger.js';
import type { RateLimiter } from '../infra/rate-limit.js';
import type { JobChanged } from '../jobs/job-events.js';
import type { QueueRegistry } from '../jobs/job-queue.js';
import type { JobStore } from '../jobs/job-store.js';
import type { DeliveryQueues } from '../webhooks/webhook-queue.js';

/** Topics are the Redis channel names of jobs/job-events.ts; payloads carry ids only. */
export type JobPubSub = PubSub<Record<string, [JobChanged]>>;

/** What lives as long as the api process, shared by every request. */
export interface ApiServices {
  config: Config;
  orm: MikroORM;
  logger: Logger;
  /** Commands and publishing (never put in subscriber mode). */
  redis: Redis;
  pubSub: JobPubSub;
  queues: QueueRegistry;
  /** Every write of a job row (jobs/job-store.ts). */
  jobs: JobStore;
  limiter: RateLimiter;
  /** The viewers of recently seen API tokens, ended by revocation messages. */
  bearers: BearerCache;
  /** Webhook deliveries, queued on the nodes that deliver them. */
  deliveries: DeliveryQueues;
  /** How long job changes take to reach subscribers (the api's metrics). */
  metrics?: { delivered(feed: 'job' | 'customer', publishedAt: number | undefined): void };
}

/** One per HTTP request or WebSocket operation. */
export interface GraphQLContext {
  services: ApiServices;
  /** Forked for this request: its own identity map. */
  em: EntityManager;
  viewer: Viewer | null;
  ip: string | null;
  userAgent: string | null;
  /** Adds a Set-Cookie header to the HTTP response (ignored over WebSocket). */
  setCookie(cookie: string): void;
}
