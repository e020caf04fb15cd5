import type { EntityManager } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import { recordAudit } from '../audit/audit.js';
import type { Actor } from '../auth/viewer.js';
import type { ScriptRunner } from '../executors/script-runner.js';
import { RedisLease } from '../infra/lease.js';
import type { Logger } from '../infra/logger.js';
import type { Alert } from '../jobs/tasks/task.js';

const WEEK_MS = 7 * 86_400_000;

/**
 * This week's share of a repository's data (DESIGN.md §12): the weeks since 1970 counted round
 * `weeks` groups, so N consecutive weeks read N disjoint groups (restic's
 * --read-data-subset=K/N), together every data pack once.
 */
export function checkSubset(day: Date, weeks: number): string {
  const n = Math.max(1, Math.floor(weeks));
  const week = Math.floor(day.getTime() / WEEK_MS);
  return `${(week % n) + 1}/${n}`;
}

export interface RepositoryCheck {
  repository: 'manual' | 'daily';
  outcome: 'ok' | 'failed' | 'busy' | 'unavailable';
  subset: string;
  packs: number | null;
  totalPacks: number | null;
  problem: string | null;
}

export interface CheckDeps {
  redis: Redis;
  prefix: string;
  scripts: ScriptRunner;
  logger: Logger;
  em: EntityManager;
  actor: Actor;
  alerts?: { raise(alert: Alert): Promise<void> };
  /** The outcome, for metrics. */
  onResult?: (check: RepositoryCheck) => void;
}

/**
 * Reads and verifies one group of a repository's data packs, under the repository's lease
 * (the one pruning takes: one such job of the whole installation at a time). Every check that
 * ran is in the audit log; a failed one is an alert.
 */
export async function checkRepositoryData(
  deps: CheckDeps,
  repository: 'manual' | 'daily',
  subset: string,
): Promise<RepositoryCheck> {
  const check: RepositoryCheck = {
    repository,
    outcome: 'busy',
    subset,
    packs: null,
    totalPacks: null,
    problem: null,
  };
  const lease = new RedisLease(deps.redis, `${deps.prefix}:repository:${repository}`, 60_000);
  if (!(await lease.tryAcquire())) {
    deps.logger.warn({ repository }, 'repository check skipped: another maintenance holds it');
    return check;
  }
  try {
    let reported = false;
    const result = await deps.scripts.run(
      'backup-repository',
      [repository, 'check', '--read-data-subset', subset],
      {
        timeoutMs: 12 * 3600_000,
        onLine: (line) => {
          const event = JSON.parse(line) as {
            type?: string;
            ok?: boolean;
            subset?: string;
            packs?: number;
            totalPacks?: number;
            problem?: string;
          };
          if (event.type !== 'check') return;
          reported = true;
          check.outcome = event.ok ? 'ok' : 'failed';
          check.subset = event.subset ?? subset;
          check.packs = event.packs ?? null;
          check.totalPacks = event.totalPacks ?? null;
          check.problem = event.problem ?? null;
        },
      },
    );
    if (!reported) {
      check.outcome = 'unavailable';
      check.problem = result.lastError?.message ?? 'The backup storage could not be checked.';
    }
  } finally {
    await lease.release();
  }
  deps.logger[check.outcome === 'ok' ? 'info' : 'warn']({ ...check }, 'repository check');
  await recordAudit(deps.em, {
    action: 'repository_checked',
    actor: deps.actor,
    targetId: repository,
    details: { ...check },
  });
  deps.onResult?.(check);
  if (check.outcome === 'failed') {
    await deps.alerts?.raise({
      type: 'repository_check_failed',
      repository,
      problem: check.problem ?? 'The backup storage check found errors.',
    });
  }
  return check;
}
