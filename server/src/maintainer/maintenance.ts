import type { MikroORM } from '@mikro-orm/mariadb';
import { Customer } from '../customers/customer.entity.js';
import type { ScriptRunner } from '../executors/script-runner.js';
import type { Logger } from '../infra/logger.js';
import { forgetSnapshots } from '../snapshots/catalog.js';
import type { SnapshotSource } from '../snapshots/snapshot-scope.js';
import { readTags } from '../snapshots/snapshot-tags.js';

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
  /** Customers whose retention failed (retried at the next pass). */
  failed: { source: SnapshotSource; customerId: number; message: string }[];
  pruned: SnapshotSource[];
  checked: { source: SnapshotSource; ok: boolean }[];
}

const SOURCES: SnapshotSource[] = ['manual', 'daily', 'safety'];

/** The customers that have snapshots of this source in its (shared) repository, from the tags. */
async function customersIn(deps: MaintenanceDeps, source: SnapshotSource): Promise<number[]> {
  const ids = new Set<number>();
  const result = await deps.scripts.run('backup-repository', [source, 'snapshots'], {
    onLine: (line) => {
      const entry = JSON.parse(line) as { type?: string; tags?: string[] };
      if (entry.type !== 'entry') return;
      const facts = readTags(entry.tags ?? []);
      if (facts.customerId !== null && facts.source === source) ids.add(facts.customerId);
    },
    timeoutMs: 30 * 60_000,
  });
  if (result.exitCode !== 0) {
    throw new Error(
      `listing the ${source} repository failed: ${result.lastError?.message ?? result.stderrTail.slice(-300)}`,
    );
  }
  return [...ids].sort((a, b) => a - b);
}

/**
 * One pass of the maintainer (DESIGN.md section 13): every customer's retention in every
 * repository (the policy of scripts/lib/restic.sh apply_retention: 5 manual, 3 undo points,
 * 30 days of dailies), the forgotten snapshots removed from the catalog; with `prune`, each
 * repository pruned and checked. The nodes' credentials are append-only, so this is the only
 * place old backups ever leave a repository.
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
    const customers = perCustomer
      ? (await deps.orm.em.fork().find(Customer, {}, { fields: ['id'] })).map((c) => c.id)
      : await customersIn(deps, source);
    for (const customerId of customers) {
      const removed: string[] = [];
      const result = await deps.scripts.run(
        'backup-repository',
        [source, 'retention', '--customer', String(customerId)],
        {
          onEvent: (event) => {
            if (event.type === 'retention') removed.push(...event.removed);
          },
          timeoutMs: 30 * 60_000,
        },
      );
      if (result.exitCode !== 0) {
        const message = result.lastError?.message ?? `exit ${result.exitCode}`;
        report.failed.push({ source, customerId, message });
        deps.logger.error({ source, customerId, message }, 'retention failed');
        continue;
      }
      report.removed[source] += await forgetSnapshots(
        deps.orm.em.fork(),
        customerId,
        source,
        removed,
      );
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
