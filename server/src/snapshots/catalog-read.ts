import type { EntityManager } from '@mikro-orm/mariadb';
import type { SnapshotSource } from '../jobs/job.entity.js';
import { type ISnapshot, Snapshot } from './snapshot.entity.js';

/** What a customer sees of each repository (the same limits the worker's retention keeps). */
export const MANUAL_SHOWN = 5;
export const DAILY_SHOWN_DAYS = 30;
export const SAFETY_SHOWN = 3;

/** A snapshot id as a customer may type it: 8 to 64 lowercase hex characters. */
export const SNAPSHOT_ID_PATTERN = /^[0-9a-f]{8,64}$/;

async function listSource(
  em: EntityManager,
  customerId: number,
  source: SnapshotSource,
): Promise<ISnapshot[]> {
  const fork = em.fork();
  if (source === 'daily') {
    const since = new Date(Date.now() - DAILY_SHOWN_DAYS * 86_400_000);
    return fork.find(
      Snapshot,
      { customer: customerId, source, time: { $gte: since } },
      { orderBy: { time: 'desc', id: 'desc' } },
    );
  }
  return fork.find(
    Snapshot,
    { customer: customerId, source },
    {
      orderBy: { time: 'desc', id: 'desc' },
      limit: source === 'manual' ? MANUAL_SHOWN : SAFETY_SHOWN,
    },
  );
}

/** A customer's snapshots from the catalog, newest first; all sources when none is given. */
export async function listSnapshots(
  em: EntityManager,
  customerId: number,
  source: SnapshotSource | null,
): Promise<ISnapshot[]> {
  if (source) return listSource(em, customerId, source);
  const all = await Promise.all(
    (['manual', 'daily', 'safety'] as const).map((s) => listSource(em, customerId, s)),
  );
  return all.flat().sort((a, b) => b.time.getTime() - a.time.getTime());
}

/**
 * The one catalog row of this customer whose id is, or starts with, `idOrPrefix` (already
 * validated against SNAPSHOT_ID_PATTERN); null when there is none or the prefix is ambiguous.
 */
export async function findCustomerSnapshot(
  em: EntityManager,
  customerId: number,
  idOrPrefix: string,
): Promise<ISnapshot | null> {
  const where =
    idOrPrefix.length === 64
      ? { customer: customerId, snapshotId: idOrPrefix }
      : { customer: customerId, snapshotId: { $like: `${idOrPrefix}%` } };
  const rows = await em.fork().find(Snapshot, where, { limit: 2 });
  return rows.length === 1 ? (rows[0] ?? null) : null;
}

/** The catalog row of a snapshot id recorded on a job, within the job's customer. */
export function findJobSnapshot(
  em: EntityManager,
  customerId: number,
  snapshotId: string | null | undefined,
): Promise<ISnapshot | null> {
  if (!snapshotId) return Promise.resolve(null);
  return em.fork().findOne(Snapshot, { customer: customerId, snapshotId });
}
