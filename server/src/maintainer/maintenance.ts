import type { MikroORM } from '@mikro-orm/mariadb';
import { Customer } from '../customers/customer.entity.js';
import type { ScriptRunner } from '../executors/script-runner.js';
import type { Logger } from '../infra/logger.js';
import { forgetSnapshots } from '../snapshots/catalog.js';
import type { SnapshotSource } from '../snapshots/snapshot-scope.js';

export interface MaintenanceDeps {
  orm: MikroORM;
  /** Runs backup-repository with the maintainer's full-rights configuration. */
  scripts: ScriptRunner;
  logger: Logger;
  /** Sources whose repositories are one per customer ("{customer}" in their location). */
  perCustomer?: ReadonlySet<SnapshotSource>;
}

export interface MaintenanceReport {
  /** Snapshots forgotten, per source. */
  removed: Record<SnapshotSource, number>;
  /**
   * Retention that failed (retried at the next pass): of one customer in a repository of its
   * own, or of a shared repository (customerId null; what its earlier batches removed stays
   * removed, in the catalog too).
   */
  failed: { source: SnapshotSource; customerId: number | null; message: string }[];
  pruned: SnapshotSource[];
  checked: { source: SnapshotSource; ok: boolean }[];
}

const SOURCES: SnapshotSource[] = ['manual', 'daily', 'safety'];

/** What one run of `backup-repository <source> retention [--customer N]` removed, by customer. */
async function runRetention(
  deps: MaintenanceDeps,
  source: SnapshotSource,
  customerId?: number,
): Promise<{ removed: Map<number, string[]>; error: string | null }> {
  const removed = new Map<number, string[]>();
  const args = [source, 'retention', ...(customerId ? ['--customer', String(customerId)] : [])];
  const result = await deps.scripts.run('backup-repository', args, {
    onEvent: (event) => {
      if (event.type !== 'retention') return;
      // a shared repository's events name the customer; a customer's own repository's do not
      const owner = customerId ?? event.customer;
      if (owner === undefined) return;
      removed.set(owner, [...(removed.get(owner) ?? []), ...event.removed]);
    },
    timeoutMs: 6 * 3600_000,
  });
  const error =
    result.exitCode === 0 ? null : (result.lastError?.message ?? `exit ${result.exitCode}`);
  return { removed, error };
}

/**
 * One pass of the maintainer (DESIGN.md section 13): every customer's retention in every
 * repository (the policy of scripts/lib/restic.sh apply_retention: 5 manual, 3 undo points,
 * 30 days of dailies), the forgotten snapshots removed from the catalog; with `prune`, each
 * repository pruned and checked. The nodes' credentials are append-only, so this is the only
 * place old backups ever leave a repository. A shared repository's retention is one script
 * run for all its customers (one listing, a forget call per batch of snapshots: the
 * exclusive lock is taken a few times, not once per customer); a repository of one customer
 * is that customer's run.
 */
export async function runMaintenance(
  deps: MaintenanceDeps,
  options: { prune?: boolean; check?: boolean } = {},
): Promise<MaintenanceReport> {
  const report: MaintenanceReport = {
    removed: { manual: 0, daily: 0, safety: 0 },
    failed: [],
    pruned: [],
    checked: [],
  };
  for (const source of SOURCES) {
    const perCustomer = deps.perCustomer?.has(source) ?? false;
    const runs = perCustomer
      ? (await deps.orm.em.fork().find(Customer, {}, { fields: ['id'] })).map((c) => c.id)
      : [undefined];
    for (const customerId of runs) {
      const { removed, error } = await runRetention(deps, source, customerId);
      for (const [owner, ids] of removed)
        report.removed[source] += await forgetSnapshots(deps.orm.em.fork(), owner, source, ids);
      if (error !== null) {
        report.failed.push({ source, customerId: customerId ?? null, message: error });
        deps.logger.error({ source, customerId, message: error }, 'retention failed');
      }
    }
  }
  // safety snapshots live in the manual repository unless configured apart; pruning the
  // manual repository covers them (a separate one is pruned as its own).
  for (const source of ['manual', 'daily'] as const) {
    if (!options.prune && !options.check) break;
    if (deps.perCustomer?.has(source)) continue; // one per customer: pruned with its owner
    if (options.prune) {
      const r = await deps.scripts.run('backup-repository', [source, 'prune'], {
        timeoutMs: 6 * 3600_000,
      });
      if (r.exitCode === 0) report.pruned.push(source);
      else deps.logger.error({ source, exitCode: r.exitCode }, 'prune failed');
    }
    if (options.check) {
      const r = await deps.scripts.run('backup-repository', [source, 'check'], {
        timeoutMs: 6 * 3600_000,
      });
      report.checked.push({ source, ok: r.exitCode === 0 });
      deps.logger[r.exitCode === 0 ? 'info' : 'error'](
        { source, ok: r.exitCode === 0 },
        'repository check',
      );
    }
  }
  deps.logger.info({ report }, 'maintenance pass done');
  return report;
}
