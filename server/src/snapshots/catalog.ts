import type { EntityManager } from '@mikro-orm/mariadb';
import { type RetryOptions, retryWhileDisconnected } from '../jobs/db-retry.js';
import { Snapshot } from './snapshot.entity.js';
import type { BackupScope, SnapshotSource } from './snapshot-scope.js';
import { readTags } from './snapshot-tags.js';

/** A snapshot as the repository describes it (restic's JSON, as printed by the scripts). */
export interface RepositorySnapshot {
  id: string;
  short_id?: string;
  time: string;
  paths?: string[];
  tags?: string[] | null;
  size?: number | null;
  summary?: { total_bytes_processed?: number } | null;
}

export interface CatalogEntry {
  customerId: number;
  source: SnapshotSource;
  scope: BackupScope;
  snapshot: RepositorySnapshot;
  label?: string | null;
  jobId?: number | null;
}

function sizeOf(snapshot: RepositorySnapshot): number | null {
  return snapshot.size ?? snapshot.summary?.total_bytes_processed ?? null;
}

/**
 * The catalog's writes keep trying while the database cannot be reached (db-retry.ts): a
 * snapshot a script made while MariaDB restarted (a backup's, a restore's undo point) was
 * otherwise left out of the catalog, though it is in the repository, until the next sync an
 * hour later. Both writes are idempotent (an upsert, a delete). Tests shorten the wait.
 */
export const catalogWriteRetry: RetryOptions = { forMs: 600_000 };

/** Adds or refreshes one catalog row (one per snapshot and customer). */
export async function recordSnapshot(em: EntityManager, entry: CatalogEntry): Promise<void> {
  const { snapshot } = entry;
  const tags = snapshot.tags ?? [];
  const facts = readTags(tags);
  const connection = em.getConnection();
  await retryWhileDisconnected(
    () =>
      connection.execute(
        `insert into snapshots (source, snapshot_id, short_id, customer_id, time, scope, label,
       size_bytes, paths, tags, created_by_job_id, synced_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, utc_timestamp())
     on duplicate key update source = values(source), scope = values(scope),
       label = values(label), size_bytes = coalesce(values(size_bytes), size_bytes),
       paths = values(paths), tags = values(tags),
       created_by_job_id = coalesce(created_by_job_id, values(created_by_job_id)),
       synced_at = utc_timestamp()`,
        [
          entry.source,
          snapshot.id,
          snapshot.short_id ?? snapshot.id.slice(0, 8),
          entry.customerId,
          new Date(snapshot.time),
          entry.scope,
          entry.label ?? facts.label,
          sizeOf(snapshot),
          JSON.stringify(snapshot.paths ?? []),
          JSON.stringify(tags),
          entry.jobId ?? facts.jobId,
        ],
      ),
    catalogWriteRetry,
  );
}

/** Removes the rows of snapshots that retention forgot, for that customer and source only. */
export async function forgetSnapshots(
  em: EntityManager,
  customerId: number,
  source: SnapshotSource,
  snapshotIds: readonly string[],
): Promise<number> {
  if (snapshotIds.length === 0) return 0;
  return retryWhileDisconnected(
    () =>
      em.fork().nativeDelete(Snapshot, {
        customer: customerId,
        source,
        snapshotId: { $in: [...snapshotIds] },
      }),
    catalogWriteRetry,
  );
}

/** The catalog of the given customers and source as it is now (before a repository listing). */
export interface CatalogMark {
  /** Rows present (customer/snapshot id). */
  rows: Set<string>;
  /** The database's UTC clock, 'YYYY-MM-DD hh:mm:ss' (whole seconds, as synced_at is kept). */
  at: string;
}

const catalogKey = (customerId: number, id: string) => `${customerId}/${id}`;

/** What the catalog held just before a repository listing was started (see replaceCatalog). */
export async function markCatalog(
  em: EntityManager,
  source: SnapshotSource,
  customerIds: readonly number[],
): Promise<CatalogMark> {
  const fork = em.fork();
  const [clock] = await fork
    .getConnection()
    .execute<{ now: string }[]>("select date_format(utc_timestamp(), '%Y-%m-%d %H:%i:%s') as now");
  const rows =
    customerIds.length === 0
      ? []
      : await fork.find(
          Snapshot,
          { customer: { $in: [...customerIds] }, source },
          { fields: ['snapshotId', 'customer'] },
        );
  return {
    rows: new Set(rows.map((row) => catalogKey(row.customer.id, row.snapshotId))),
    at: String(clock?.now ?? '1970-01-01 00:00:00'),
  };
}

/**
 * Replaces the catalog of the given customers and source with what a repository listing
 * says: new snapshots appear, snapshots that no longer exist disappear. Jobs write the
 * catalog while the listing runs (it takes seconds to minutes), so the listing is only
 * trusted for what it could have seen: a row recorded after the listing started (a job's
 * new snapshot: synced_at at or after mark.at) is kept although the listing lacks it, and a
 * listed snapshot whose row was there at the mark and is gone now (a job's retention forgot
 * it meanwhile) is not added back.
 */
export async function replaceCatalog(
  em: EntityManager,
  source: SnapshotSource,
  customerIds: readonly number[],
  entries: readonly CatalogEntry[],
  mark?: CatalogMark,
): Promise<{ added: number; removed: number }> {
  if (customerIds.length === 0) return { added: 0, removed: 0 };
  const fork = em.fork();
  // recent: recorded at or after the mark (whole seconds: a row of the mark's own second
  // counts as recent and waits for the next sync)
  const existing = await fork
    .getConnection()
    .execute<{ snapshot_id: string; customer_id: number; recent: number }[]>(
      `select snapshot_id, customer_id, (synced_at >= ?) as recent from snapshots
      where source = ? and customer_id in (${customerIds.map(() => '?').join(',')})`,
      [mark?.at ?? '9999-12-31 23:59:59', source, ...customerIds],
    );
  const known = new Set(existing.map((row) => catalogKey(row.customer_id, row.snapshot_id)));
  const listed = new Set(entries.map((e) => catalogKey(e.customerId, e.snapshot.id)));
  let added = 0;
  for (const entry of entries) {
    const key = catalogKey(entry.customerId, entry.snapshot.id);
    if (mark?.rows.has(key) && !known.has(key)) continue; // forgotten during the listing
    if (!known.has(key)) added += 1;
    await recordSnapshot(fork, entry);
  }
  const stale = existing.filter(
    (row) =>
      !listed.has(catalogKey(row.customer_id, row.snapshot_id)) &&
      (!mark || Number(row.recent) === 0),
  );
  let removed = 0;
  for (const row of stale) {
    removed += await forgetSnapshots(fork, Number(row.customer_id), source, [row.snapshot_id]);
  }
  return { added, removed };
}
