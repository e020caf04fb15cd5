import type { EntityManager } from '@mikro-orm/mariadb';
import DataLoader from 'dataloader';
import { nullableUtcDatetime, utcDatetime } from '../db/raw.js';
import { type ISnapshot, Snapshot } from './snapshot.entity.js';
import type { SnapshotSource } from './snapshot-scope.js';

/** What a customer sees of each repository (the same limits the worker's retention keeps). */
export const MANUAL_SHOWN = 5;
export const DAILY_SHOWN_DAYS = 30;
export const SAFETY_SHOWN = 3;

/** A snapshot id as a customer may type it: 8 to 64 lowercase hex characters. */
export const SNAPSHOT_ID_PATTERN = /^[0-9a-f]{8,64}$/;

/** What a customer sees of a catalog row (a Snapshot entity is one too). */
export type SnapshotView = Pick<
  ISnapshot,
  | 'id'
  | 'snapshotId'
  | 'shortId'
  | 'source'
  | 'scope'
  | 'time'
  | 'label'
  | 'sizeBytes'
  | 'indexedAt'
  | 'indexReadAt'
> & { customerId?: number; customer: { id: number } };

/** The customer whose catalog row this is (a listed row, or an entity). */
export function snapshotOwner(view: SnapshotView): number | null {
  return view.customerId ?? view.customer?.id ?? null;
}

const SHOWN_COLUMNS =
  'id, customer_id, snapshot_id, short_id, source, scope, time, label, size_bytes, indexed_at, index_read_at from snapshots';

interface ShownRow {
  id: number;
  customer_id: number;
  indexed_at: string | Date | null;
  index_read_at: string | Date | null;
  snapshot_id: string;
  short_id: string;
  source: SnapshotSource;
  scope: ISnapshot['scope'];
  time: string | Date;
  label: string | null;
  size_bytes: number | string | null;
}

/** Each source's window of the catalog, as one SELECT of a UNION ALL, with its bindings. */
function sourceQuery(customerId: number, source: SnapshotSource): [string, unknown[]] {
  const order = 'order by time desc, id desc';
  if (source === 'daily') {
    const since = new Date(Date.now() - DAILY_SHOWN_DAYS * 86_400_000);
    return [
      `(select ${SHOWN_COLUMNS} where customer_id = ? and source = 'daily' and time >= ? ${order})`,
      [customerId, since],
    ];
  }
  const limit = source === 'manual' ? MANUAL_SHOWN : SAFETY_SHOWN;
  return [
    `(select ${SHOWN_COLUMNS} where customer_id = ? and source = ? ${order} limit ${limit})`,
    [customerId, source],
  ];
}

/**
 * A customer's snapshots from the catalog, newest first; all sources when none is given.
 * The hot path of the page and of integrators' polling: one round trip (a UNION ALL over the
 * (customer_id, source, time) index), plain rows, no entity hydration.
 */
export async function listSnapshots(
  em: EntityManager,
  customerId: number,
  source: SnapshotSource | null,
): Promise<SnapshotView[]> {
  const parts = (source ? [source] : (['manual', 'daily', 'safety'] as const)).map((s) =>
    sourceQuery(customerId, s),
  );
  const rows = await em.getConnection().execute<ShownRow[]>(
    `${parts.map(([sql]) => sql).join(' union all ')} order by time desc, id desc`,
    parts.flatMap(([, bindings]) => bindings),
  );
  return rows.map((row) => shownView(row, customerId));
}

function shownView(row: ShownRow, customerId: number): SnapshotView {
  return {
    customerId,
    id: row.id,
    customer: { id: row.customer_id },
    indexedAt: nullableUtcDatetime(row.indexed_at),
    indexReadAt: nullableUtcDatetime(row.index_read_at),
    snapshotId: row.snapshot_id,
    shortId: row.short_id,
    source: row.source,
    scope: row.scope,
    time: utcDatetime(row.time),
    label: row.label,
    sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
  };
}

/**
 * findCustomerSnapshot for the read paths (browsing: every folder a customer opens starts
 * here): the same row, as one SQL string and a plain view, no entity hydration.
 */
export async function findCustomerSnapshotView(
  em: EntityManager,
  customerId: number,
  idOrPrefix: string,
): Promise<SnapshotView | null> {
  const full = idOrPrefix.length === 64;
  const rows = await em
    .getConnection()
    .execute<ShownRow[]>(
      `select ${SHOWN_COLUMNS} where customer_id = ? and ${full ? 'snapshot_id = ?' : 'snapshot_id like ?'} limit 2`,
      [customerId, full ? idOrPrefix : `${idOrPrefix}%`],
    );
  return rows.length === 1 && rows[0] ? shownView(rows[0], customerId) : null;
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

/**
 * The customer's snapshot before this one with the same scope (manual or daily; undo points
 * are not backups one compares with), or null.
 */
export async function previousSnapshot(
  em: EntityManager,
  snapshot: SnapshotView,
): Promise<ISnapshot | null> {
  return em.fork().findOne(
    Snapshot,
    {
      customer: snapshot.customer.id,
      scope: snapshot.scope,
      source: { $in: ['manual', 'daily'] },
      $or: [{ time: { $lt: snapshot.time } }, { time: snapshot.time, id: { $lt: snapshot.id } }],
    },
    { orderBy: { time: 'desc', id: 'desc' } },
  );
}

/** The catalog row of one snapshot of this customer (a full id), with its index's state. */
export async function findCatalogRow(
  em: EntityManager,
  customerId: number,
  snapshotId: string,
): Promise<ISnapshot | null> {
  return em.fork().findOne(Snapshot, { customer: customerId, snapshotId });
}

/** Batches the job snapshot lookups of one request (or socket operation): key "customer:id". */
const jobSnapshotLoaders = new WeakMap<EntityManager, DataLoader<string, ISnapshot | null>>();

function jobSnapshotLoader(em: EntityManager): DataLoader<string, ISnapshot | null> {
  let loader = jobSnapshotLoaders.get(em);
  if (!loader) {
    loader = new DataLoader(
      async (keys: readonly string[]) => {
        const byCustomer = new Map<number, string[]>();
        for (const key of keys) {
          const [customer, snapshotId] = key.split(':') as [string, string];
          const ids = byCustomer.get(Number(customer)) ?? [];
          ids.push(snapshotId);
          byCustomer.set(Number(customer), ids);
        }
        const rows = await em.fork().find(Snapshot, {
          $or: [...byCustomer].map(([customer, ids]) => ({
            customer,
            snapshotId: { $in: ids },
          })),
        });
        const found = new Map(rows.map((row) => [`${row.customer.id}:${row.snapshotId}`, row]));
        return keys.map((key) => found.get(key) ?? null);
      },
      // Batching only: a job's undo point appears after COMPLETED, and a subscription's
      // context lives as long as its socket, so nothing is remembered between ticks.
      { cache: false, maxBatchSize: 500 },
    );
    jobSnapshotLoaders.set(em, loader);
  }
  return loader;
}

/**
 * The catalog row of a snapshot id recorded on a job, within the job's customer. The lookups
 * of one request are batched into one query: a list of jobs with their snapshots (and aliases
 * of it) costs one query per tick, not two per job.
 */
export function findJobSnapshot(
  em: EntityManager,
  customerId: number,
  snapshotId: string | null | undefined,
): Promise<ISnapshot | null> {
  if (!snapshotId) return Promise.resolve(null);
  return jobSnapshotLoader(em).load(`${customerId}:${snapshotId}`);
}
