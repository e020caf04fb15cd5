import type { MikroORM } from '@mikro-orm/mariadb';
import { Customer } from '../customers/customer.entity.js';
import type { ScriptRunner } from '../executors/script-runner.js';
import type { Logger } from '../infra/logger.js';
import {
  type CatalogEntry,
  markCatalog,
  type RepositorySnapshot,
  replaceCatalog,
} from './catalog.js';
import type { SnapshotSource } from './snapshot-scope.js';
import { readTags } from './snapshot-tags.js';

export interface CatalogSyncDeps {
  orm: MikroORM;
  scripts: ScriptRunner;
  logger: Logger;
  node: string;
  /** Sources whose repositories are one per customer ("{customer}" in their location). */
  perCustomer?: ReadonlySet<SnapshotSource>;
}

/** Which sources have one repository per customer, from the configured locations. */
export function perCustomerSources(cfg: {
  BACKUPS_MANUAL_REPOSITORY: string;
  BACKUPS_DAILY_REPOSITORY: string;
  BACKUPS_SAFETY_REPOSITORY: string;
}): Set<SnapshotSource> {
  const sharded = (location: string) => location.includes('{customer}');
  const sources = new Set<SnapshotSource>();
  if (sharded(cfg.BACKUPS_MANUAL_REPOSITORY)) sources.add('manual');
  if (sharded(cfg.BACKUPS_DAILY_REPOSITORY)) sources.add('daily');
  if (sharded(cfg.BACKUPS_SAFETY_REPOSITORY || cfg.BACKUPS_MANUAL_REPOSITORY))
    sources.add('safety');
  return sources;
}

const SOURCES: SnapshotSource[] = ['manual', 'daily', 'safety'];

async function listRepository(
  deps: CatalogSyncDeps,
  source: SnapshotSource,
  customerId?: number,
): Promise<RepositorySnapshot[]> {
  const entries: RepositorySnapshot[] = [];
  const args = [source, 'snapshots', ...(customerId ? ['--customer', String(customerId)] : [])];
  const result = await deps.scripts.run('backup-repository', args, {
    onLine: (line) => {
      const parsed = JSON.parse(line) as { type?: string } & RepositorySnapshot;
      if (parsed.type === 'entry' && /^[0-9a-f]{64}$/.test(parsed.id)) entries.push(parsed);
    },
    timeoutMs: 10 * 60_000,
  });
  if (result.exitCode !== 0) {
    throw new Error(
      `listing the ${source} repository failed (exit ${result.exitCode}): ${result.lastError?.message ?? result.stderrTail.slice(-300)}`,
    );
  }
  return entries;
}

/** Customers whose site folders a legacy daily snapshot holds (membership by path). */
async function legacyMembers(deps: CatalogSyncDeps, snapshotId: string): Promise<number[]> {
  const members: number[] = [];
  const result = await deps.scripts.run(
    'backup-repository',
    ['daily', 'members', '--snapshot', snapshotId],
    {
      onLine: (line) => {
        const parsed = JSON.parse(line) as { type?: string; customer?: number };
        if (parsed.type === 'member' && Number.isInteger(parsed.customer))
          members.push(Number(parsed.customer));
      },
      timeoutMs: 10 * 60_000,
    },
  );
  if (result.exitCode !== 0) throw new Error(`reading the members of ${snapshotId} failed`);
  return members;
}

/**
 * Brings the catalog of this node's customers in step with the repositories: snapshots made
 * outside a job appear, forgotten ones disappear. A legacy daily snapshot (no customer tag)
 * gives a row for each customer whose folder it holds.
 */
export async function syncCatalog(
  deps: CatalogSyncDeps,
  sources: SnapshotSource[] = SOURCES,
): Promise<Record<string, { added: number; removed: number }>> {
  const em = deps.orm.em.fork();
  const customers = await em.find(Customer, { host: deps.node }, { fields: ['id'] });
  const ids = new Set(customers.map((c) => c.id));
  const report: Record<string, { added: number; removed: number }> = {};
  const knownLegacy = new Map<string, number[]>();
  for (const source of sources) {
    let snapshots: RepositorySnapshot[] = [];
    // what the catalog held before the listing: jobs go on writing it meanwhile
    const mark = await markCatalog(em, source, [...ids]);
    if (deps.perCustomer?.has(source)) {
      // one repository per customer: every restic call reads only that customer's snapshots
      for (const id of ids) snapshots.push(...(await listRepository(deps, source, id)));
    } else {
      snapshots = await listRepository(deps, source);
    }
    const entries: CatalogEntry[] = [];
    for (const snapshot of snapshots) {
      const facts = readTags(snapshot.tags ?? []);
      if (facts.customerId !== null) {
        if (facts.source === source && ids.has(facts.customerId)) {
          entries.push({
            customerId: facts.customerId,
            source,
            scope: facts.scope ?? 'both',
            snapshot,
          });
        }
        continue;
      }
      if (source !== 'daily' || facts.source === 'manual' || facts.source === 'safety') continue;
      let members = knownLegacy.get(snapshot.id);
      if (!members) {
        members = await legacyMembers(deps, snapshot.id);
        knownLegacy.set(snapshot.id, members);
      }
      for (const customerId of members) {
        if (ids.has(customerId))
          entries.push({ customerId, source: 'daily', scope: 'both', snapshot });
      }
    }
    report[source] = await replaceCatalog(em, source, [...ids], entries, mark);
  }
  deps.logger.info({ report }, 'catalog synchronised');
  return report;
}
