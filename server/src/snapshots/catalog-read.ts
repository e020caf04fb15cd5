import type { EntityManager } from '@mikro-orm/mariadb';
import DataLoader from 'dataloader';
import { nullableUtcDatetime, preparedRows } from '../db/raw.js';
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
> & {
  customerId?: number;
  customer: { id: number };
  /** `time` as ISO-8601 in UTC when it came as the driver's string (what createdAt answers). */
  timeIso?: string;
};

/** The customer whose catalog row this is (a listed row, or an entity). */
export function snapshotOwner(view: SnapshotView): number | null {
  return view.customerId ?? view.customer?.id ?? null;
}

/**
 * `time` (DATETIME(3), in UTC) comes as its ISO-8601 text, exactly what Date#toISOString gives
 * ('YYYY-MM-DDThh:mm:ss.fffZ'): the listing serialises it 35 times per request, and the driver
 * would otherwise build its own 'YYYY-MM-DD hh:mm:ss.fff' from the binary value piece by piece
 * (a dozen concatenations per value: ~13 KB of garbage per listing, in a heap profile), which
 * was then rewritten again here. MariaDB formats it in C from the value it already has.
 */
const SHOWN_COLUMNS =
  "id, customer_id, snapshot_id, short_id, source, scope, concat(left(date_format(time, '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z') as time_iso, label, size_bytes, indexed_at, index_read_at from snapshots";

interface ShownRow {
  id: number;
  customer_id: number;
  indexed_at: string | Date | null;
  index_read_at: string | Date | null;
  snapshot_id: string;
  short_id: string;
  source: SnapshotSource;
  scope: ISnapshot['scope'];
  time_iso: string;
  label: string | null;
  size_bytes: number | string | null;
}

/** How many rows of each source a customer sees (daily: every row of the window). */
const SHOWN_PER_SOURCE: Record<SnapshotSource, number> = {
  manual: MANUAL_SHOWN,
  daily: Number.POSITIVE_INFINITY,
  safety: SAFETY_SHOWN,
};

/** The daily window (the rows come in no particular order: newestFirst sorts them). */
const WINDOW = "(source <> 'daily' or time >= ?)";
const LIST_ALL = `select ${SHOWN_COLUMNS} where customer_id = ? and ${WINDOW}`;
const LIST_SOURCE = `select ${SHOWN_COLUMNS} where customer_id = ? and source = ? and ${WINDOW}`;

/** The listing's order: time descending, then id descending (ISO texts sort as their times). */
function newestFirst(a: ShownRow, b: ShownRow): number {
  if (a.time_iso !== b.time_iso) return a.time_iso < b.time_iso ? 1 : -1;
  return Number(b.id) - Number(a.id);
}

/**
 * A customer's snapshots from the catalog, newest first; all sources when none is given.
 * The hot path of the page and of integrators' polling: one prepared statement, one range of
 * the (customer_id, source, time) index (the daily rows of the window, every manual and undo
 * point row: retention keeps a handful of each), sorted here, then the per-source limits
 * applied on rows in order. Sorted by MariaDB (order by time desc, id desc), the ~35 rows went
 * through a filesort that read each row a second time by its row id (ANALYZE: sort_key,rowid,
 * ~40% of the statement's time); a JavaScript sort of 35 rows costs a few microseconds. A
 * UNION ALL of one SELECT per source with its LIMIT answered the same, at ~2.5x MariaDB's CPU
 * (a temporary table, then a filesort). Plain rows, no entity hydration.
 */
export async function listSnapshots(
  em: EntityManager,
  customerId: number,
  source: SnapshotSource | null,
): Promise<SnapshotView[]> {
  const since = new Date(Date.now() - DAILY_SHOWN_DAYS * 86_400_000);
  const rows = await preparedRows<ShownRow>(
    em,
    source === null ? LIST_ALL : LIST_SOURCE,
    source === null ? [customerId, since] : [customerId, source, since],
  );
  rows.sort(newestFirst);
  const left = { ...SHOWN_PER_SOURCE };
  const shown: SnapshotView[] = [];
  for (const row of rows) {
    if (left[row.source] <= 0) continue;
    left[row.source] -= 1;
    shown.push(shownView(row, customerId));
  }
  return shown;
}

/**
 * A listed row. The listing serialises 35 times per request: `createdAt` is the ISO text
 * MariaDB made (SHOWN_COLUMNS), and the Dates (`time`, the index's times) and the `customer`
 * object are made only if something reads them (the listing reads none). A class with the
 * lazy parts on its prototype, not an object literal with getters (V8 builds those in
 * dictionary mode: slower than parsing the dates).
 */
class ShownSnapshot implements SnapshotView {
  readonly customerId: number;
  readonly id: number;
  readonly snapshotId: string;
  readonly shortId: string;
  readonly source: SnapshotSource;
  readonly scope: ISnapshot['scope'];
  readonly label: string | null;
  readonly sizeBytes: number | null;
  readonly timeIso: string;
  private readonly rawIndexedAt: string | Date | null;
  private readonly rawIndexReadAt: string | Date | null;
  private readonly ownerId: number;
  private date: Date | undefined;
  private owner: { id: number } | undefined;

  constructor(row: ShownRow, customerId: number) {
    this.customerId = customerId;
    this.id = row.id;
    this.ownerId = row.customer_id;
    this.snapshotId = row.snapshot_id;
    this.shortId = row.short_id;
    this.source = row.source;
    this.scope = row.scope;
    this.label = row.label;
    this.sizeBytes = row.size_bytes === null ? null : Number(row.size_bytes);
    this.timeIso = row.time_iso;
    this.rawIndexedAt = row.indexed_at;
    this.rawIndexReadAt = row.index_read_at;
  }

  get time(): Date {
    this.date ??= new Date(this.timeIso);
    return this.date;
  }

  get customer(): { id: number } {
    this.owner ??= { id: this.ownerId };
    return this.owner;
  }

  get indexedAt(): Date | null {
    return nullableUtcDatetime(this.rawIndexedAt);
  }

  get indexReadAt(): Date | null {
    return nullableUtcDatetime(this.rawIndexReadAt);
  }
}

function shownView(row: ShownRow, customerId: number): SnapshotView {
  return new ShownSnapshot(row, customerId);
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
