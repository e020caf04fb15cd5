import type { Redis } from 'ioredis';
import type { Logger } from '../infra/logger.js';
import type { Alert } from '../jobs/tasks/task.js';

/**
 * The stream operators' tools read alerts from, oldest first. (Customers' integrators hear of a
 * failed drill through the verification.failed webhook, recorded with the job's end.)
 */
export const alertStream = (prefix: string) => `${prefix}:alerts`;

/**
 * A backup that failed its drill, or a repository that failed its check (DESIGN.md §12): a
 * metric (backups_verification_failed_total), an error log line with the reason, and an entry
 * on a Redis stream that outlives a restart of whoever delivers it (a publish would be lost
 * while nobody listens). The stream keeps the newest 10,000 entries.
 */
export class Alerts {
  constructor(
    private readonly deps: {
      redis: Redis;
      prefix: string;
      logger: Logger;
      /** The worker's metrics (worker/metrics.ts): the counter is registered once, there. */
      metrics: { alertRaised(kind: 'drill' | 'check'): void };
    },
  ) {}

  async raise(alert: Alert): Promise<void> {
    this.deps.metrics.alertRaised(alert.type === 'verification_failed' ? 'drill' : 'check');
    this.deps.logger.error({ alert }, `${alert.type}: ${alert.problem}`);
    await this.deps.redis
      .xadd(
        alertStream(this.deps.prefix),
        'MAXLEN',
        '~',
        '10000',
        '*',
        'type',
        alert.type,
        'alert',
        JSON.stringify({ ...alert, at: new Date().toISOString() }),
      )
      .catch((error: unknown) => this.deps.logger.error({ err: error }, 'alert not stored'));
  }
}
