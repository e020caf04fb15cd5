import { userInfo } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { recordAudit } from '../audit/audit.js';
import type { AuditAction } from '../audit/audit-event.entity.js';
import { config } from '../config/config.js';
import { openOrm } from '../db/orm.js';
import { ScriptRunner } from '../executors/script-runner.js';
import { createLogger } from '../infra/logger.js';
import { createRedis } from '../infra/redis.js';
import { QueueRegistry } from '../jobs/job-queue.js';
import { JobStore } from '../jobs/job-store.js';
import { deliveryQueues } from '../webhooks/webhook-queue.js';

export type Orm = Awaited<ReturnType<typeof openOrm>>;

/** Who runs the command, as the audit log and the jobs' requester name them. */
export const operator = () => `operator:${userInfo().username}`.slice(0, 64);

export async function withOrm<T>(fn: (orm: Orm) => Promise<T>): Promise<T> {
  const orm = await openOrm(config());
  try {
    return await fn(orm);
  } finally {
    await orm.close(true);
  }
}

export interface CliServices {
  orm: Orm;
  queues: QueueRegistry;
  redis: ReturnType<typeof createRedis>;
  /** Job rows are written here, exactly as the api and the worker write them. */
  jobs: JobStore;
}

/** Everything commands that touch jobs, queues and pub/sub need. */
export async function withServices<T>(fn: (s: CliServices) => Promise<T>): Promise<T> {
  const cfg = config();
  return withOrm(async (orm) => {
    const queues = new QueueRegistry({
      redisUrl: cfg.BACKUPS_REDIS_URL,
      prefix: cfg.BACKUPS_REDIS_PREFIX,
    });
    const redis = createRedis(cfg.BACKUPS_REDIS_URL, 'cli');
    const deliveries = deliveryQueues({
      redisUrl: cfg.BACKUPS_REDIS_URL,
      prefix: cfg.BACKUPS_REDIS_PREFIX,
    });
    try {
      const jobs = new JobStore({
        orm,
        redis,
        prefix: cfg.BACKUPS_REDIS_PREFIX,
        queues,
        deliveries,
      });
      return await fn({ orm, queues, redis, jobs });
    } finally {
      await queues.close();
      await deliveries.close();
      await redis.quit();
    }
  });
}

export function audit(
  orm: Orm,
  action: AuditAction,
  customerId: number | null,
  targetId: string | null,
) {
  return recordAudit(orm.em, {
    action,
    actor: { kind: 'operator', id: operator() },
    customerId,
    targetId,
  });
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}

export function scriptRunner(): ScriptRunner {
  const cfg = config();
  return new ScriptRunner({
    scriptsDir: cfg.BACKUPS_SCRIPTS_DIR,
    prefix: cfg.BACKUPS_SCRIPT_PREFIX,
    logger: createLogger('cli', 'warn'),
  });
}
