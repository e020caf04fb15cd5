import type { Redis } from 'ioredis';
import type { ScriptRunner } from '../executors/script-runner.js';
import { RedisLease } from '../infra/lease.js';
import type { Logger } from '../infra/logger.js';
import type { JobMetrics } from './metrics.js';

/**
 * Repository-wide work that takes restic's exclusive lock (prune, check). A Redis lease per
 * repository makes sure only one worker of the whole installation does it at a time; restic's
 * own lock (with --retry-lock) keeps jobs and pruning from corrupting each other.
 */
export async function maintainRepository(
  deps: {
    redis: Redis;
    prefix: string;
    scripts: ScriptRunner;
    logger: Logger;
    metrics?: JobMetrics;
  },
  kind: 'manual' | 'daily',
  action: 'prune' | 'check',
): Promise<'done' | 'failed' | 'busy'> {
  const lease = new RedisLease(deps.redis, `${deps.prefix}:repository:${kind}`, 60_000);
  if (!(await lease.tryAcquire())) return 'busy';
  try {
    const result = await deps.scripts.run('backup-repository', [kind, action], {
      timeoutMs: 6 * 3600_000,
    });
    const ok = result.exitCode === 0;
    if (action === 'check') deps.metrics?.repositoryChecked(kind, ok);
    deps.logger[ok ? 'info' : 'error'](
      { kind, action, exitCode: result.exitCode },
      `repository ${action}`,
    );
    return ok ? 'done' : 'failed';
  } finally {
    await lease.release();
  }
}
