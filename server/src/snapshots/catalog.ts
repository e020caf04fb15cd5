import type { EntityManager } from '@mikro-orm/mariadb';
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

/** Adds or refreshes one catalog row (one per snapshot and customer). */
export async function recordSnapshot(em: EntityManager, entry: CatalogEntry): Promise<void> {
  const { snapshot } = entry;
  const tags = snapshot.tags ?? [];
  const facts = readTags(tags);
  await em.getConnection().execute(
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
  return em.fork().nativeDelete(Snapshot, {
    customer: customerId,
    source,
    snapshotId: { $in: [...snapshotIds] },
  });
}

/**
 * Replaces the catalog of the given customers and source with what a repository listing
 * says: new snapshots appear, snapshots that no longer exist disappear.
 */
export async function replaceCatalog(
  em: EntityManager,
  source: SnapshotSource,
  customerIds: readonly number[],
  entries: readonly CatalogEntry[],
): Promise<{ added: number; removed: number }> {
  if (customerIds.length === 0) return { added: 0, removed: 0 };
  const fork = em.fork();
  const existing = await fork.find(
    Snapshot,
    { customer: { $in: [...customerIds] }, source },
    { fields: ['snapshotId', 'customer'] },
  );
  const key = (customerId: number, id: string) => `${customerId}/${id}`;
  const known = new Set(existing.map((row) => key(row.customer.id, row.snapshotId)));
  const listed = new Set(entries.map((e) => key(e.customerId, e.snapshot.id)));
  let added = 0;
  for (const entry of entries) {
    if (!known.has(key(entry.customerId, entry.snapshot.id))) added += 1;
    await recordSnapshot(fork, entry);
  }
  const stale = existing.filter((row) => !listed.has(key(row.customer.id, row.snapshotId)));
  let removed = 0;
  for (const row of stale) {
    removed += await forgetSnapshots(fork, row.customer.id, source, [row.snapshotId]);
  }
  return { added, removed };
}
