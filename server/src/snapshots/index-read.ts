import type { EntityManager } from '@mikro-orm/mariadb';
import { nullableUtcDatetime } from '../db/raw.js';
import { type EntryType, pathHash } from './snapshot-index.js';

/**
 * The api's reads of a snapshot's index (snapshot_entries, snapshot_tables): one SQL string
 * each, on the folder or name index, no entity hydration. The caller has already found the
 * catalog row in the viewer's own catalog; every read is confined to that row.
 */

export interface SnapshotEntryView {
  path: string;
  name: string;
  type: EntryType;
  sizeBytes: number | null;
  modifiedAt: Date | null;
  /** Octal, e.g. "0644". */
  mode: string;
}

interface EntryRow {
  path: string;
  name: string;
  type: EntryType;
  size_bytes: number | string | null;
  mtime: string | Date | null;
  mode: number;
  kind_rank: number;
  path_hash: Buffer;
}

const ENTRY_COLUMNS = 'path, name, type, size_bytes, mtime, mode, kind_rank, path_hash';

function viewOf(row: EntryRow): SnapshotEntryView {
  return {
    path: row.path,
    name: row.name,
    type: row.type,
    sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    modifiedAt: nullableUtcDatetime(row.mtime),
    mode: Number(row.mode).toString(8).padStart(4, '0'),
  };
}

/** A paths limit of the index: what a path a customer names may be (DESIGN.md §10). */
export const PATH_MAX_BYTES = 4096;
export const PATHS_MAX = 1000;

/**
 * Why a path a customer named cannot be one of the index (relative, normalised, one line),
 * or null when it can. "" is the content folder itself (allowed only where `root` is).
 */
export function pathProblem(path: string, root = false): string | null {
  if (path === '') return root ? null : 'A path must not be empty.';
  if (path.includes('\0') || path.includes('\n') || path.includes('\r')) {
    return 'A path must not contain NUL or line breaks.';
  }
  if (Buffer.byteLength(path) > PATH_MAX_BYTES) {
    return `A path is at most ${PATH_MAX_BYTES} bytes.`;
  }
  if (path.startsWith('/')) return 'Paths are relative to the site folder, without a leading /.';
  const parts = path.split('/');
  if (parts.some((part) => part === '..')) return 'A path must not contain "..".';
  if (parts.some((part) => part === '' || part === '.')) {
    return 'A path must not contain empty parts, "." or a trailing /.';
  }
  return null;
}

/** A position in a folder's listing: after the entry (kind, name, path hash). */
interface Cursor {
  rank: number;
  name: string;
  hash: Buffer;
}

export function encodeCursor(row: { kind_rank: number; name: string; path_hash: Buffer }): string {
  return Buffer.from(
    JSON.stringify([row.kind_rank, row.name, row.path_hash.toString('hex')]),
  ).toString('base64url');
}

/** The cursor a client sent back, or null when it is not one of ours. */
export function decodeCursor(value: string): Cursor | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (!Array.isArray(parsed) || parsed.length !== 3) return null;
    const [rank, name, hash] = parsed as unknown[];
    if ((rank !== 0 && rank !== 1) || typeof name !== 'string' || typeof hash !== 'string') {
      return null;
    }
    if (!/^[0-9a-f]{40}$/.test(hash) || name.length > 255) return null;
    return { rank, name, hash: Buffer.from(hash, 'hex') };
  } catch {
    return null;
  }
}

export interface EntryPage {
  entries: SnapshotEntryView[];
  endCursor: string | null;
  hasMore: boolean;
}

/** Whether the folder exists in the index ("" always does). */
export async function isFolder(em: EntityManager, rowId: number, path: string): Promise<boolean> {
  if (path === '') return true;
  const rows = await em
    .getConnection()
    .execute<{ type: string }[]>(
      'select type from snapshot_entries where snapshot_row_id = ? and path_hash = ?',
      [rowId, pathHash(path)],
    );
  return rows[0]?.type === 'dir';
}

/**
 * One page of a folder: folders first, then by name (keyset on the folder index), or null when
 * the index has no such folder. One round trip when the page has entries: the folder's own row
 * is checked in the same statement; only an empty page asks again whether the folder exists.
 */
export async function listFolder(
  em: EntityManager,
  rowId: number,
  folder: string,
  first: number,
  after: Cursor | null,
): Promise<EntryPage | null> {
  const bindings: unknown[] = [rowId, pathHash(folder)];
  let keyset = '';
  if (after) {
    keyset = `and (kind_rank > ? or (kind_rank = ? and (name > ? or (name = ? and path_hash > ?))))`;
    bindings.push(after.rank, after.rank, after.name, after.name, after.hash);
  }
  let exists = '';
  if (folder !== '') {
    exists = `and exists (select 1 from snapshot_entries f
      where f.snapshot_row_id = ? and f.path_hash = ? and f.type = 'dir')`;
    bindings.push(rowId, pathHash(folder));
  }
  const rows = await em.getConnection().execute<EntryRow[]>(
    `select ${ENTRY_COLUMNS} from snapshot_entries
     where snapshot_row_id = ? and parent_hash = ? ${keyset} ${exists}
     order by kind_rank, name, path_hash limit ${first + 1}`,
    bindings,
  );
  if (rows.length === 0 && !(await isFolder(em, rowId, folder))) return null;
  const page = rows.slice(0, first);
  const last = page.at(-1);
  return {
    entries: page.map(viewOf),
    endCursor: last ? encodeCursor(last) : null,
    hasMore: rows.length > first,
  };
}

/** LIKE's own characters, taken literally. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Entries whose name holds `name` (case- and accent-insensitive, the column's collation),
 * by name; `afterPath` (the last path of the previous page) continues a search.
 */
export async function searchNames(
  em: EntityManager,
  rowId: number,
  name: string,
  first: number,
  afterPath: string | null,
): Promise<SnapshotEntryView[]> {
  const bindings: unknown[] = [rowId, `%${likeLiteral(name)}%`];
  let keyset = '';
  if (afterPath) {
    const afterName = afterPath.slice(afterPath.lastIndexOf('/') + 1);
    keyset = 'and (name > ? or (name = ? and path_hash > ?))';
    bindings.push(afterName, afterName, pathHash(afterPath));
  }
  const rows = await em.getConnection().execute<EntryRow[]>(
    `select ${ENTRY_COLUMNS} from snapshot_entries
     where snapshot_row_id = ? and name like ? ${keyset}
     order by name, path_hash limit ${first}`,
    bindings,
  );
  return rows.map(viewOf);
}

export interface TableView {
  name: string;
  sizeBytes: number;
}

export async function listTables(em: EntityManager, rowId: number): Promise<TableView[]> {
  const rows = await em
    .getConnection()
    .execute<{ name: string; size_bytes: number | string }[]>(
      'select name, size_bytes from snapshot_tables where snapshot_row_id = ? order by name',
      [rowId],
    );
  return rows.map((row) => ({ name: row.name, sizeBytes: Number(row.size_bytes) }));
}

/** Which of `paths` the index holds (each at most once). */
export async function indexedPaths(
  em: EntityManager,
  rowId: number,
  paths: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < paths.length; i += 500) {
    const part = paths.slice(i, i + 500);
    const rows = await em
      .getConnection()
      .execute<{ path: string }[]>(
        `select path from snapshot_entries where snapshot_row_id = ? and path_hash in (${part.map(() => '?').join(',')})`,
        [rowId, ...part.map((p) => pathHash(p))],
      );
    for (const row of rows) found.add(row.path);
  }
  return found;
}

export const CHANGES_MAX = 1000;

export interface ChangesView {
  added: SnapshotEntryView[];
  removed: SnapshotEntryView[];
  modified: SnapshotEntryView[];
  tablesAdded: string[];
  tablesRemoved: string[];
  truncated: boolean;
}

/**
 * What changed from the index of `sinceRowId` to that of `rowId`: entries added and removed,
 * files (not folders, whose times change with their content) whose type, size or mtime
 * differ, tables added and removed. Each list stops at CHANGES_MAX: `truncated`.
 */
export async function compareIndexes(
  em: EntityManager,
  rowId: number,
  sinceRowId: number,
): Promise<ChangesView> {
  const connection = em.getConnection();
  const limit = CHANGES_MAX + 1;
  const only = (a: number, b: number) =>
    connection.execute<EntryRow[]>(
      `select ${ENTRY_COLUMNS.split(', ')
        .map((c) => `a.${c}`)
        .join(', ')} from snapshot_entries a
       left join snapshot_entries b on b.snapshot_row_id = ? and b.path_hash = a.path_hash
       where a.snapshot_row_id = ? and b.path_hash is null order by a.path limit ${limit}`,
      [b, a],
    );
  const [added, removed, modified, tables] = await Promise.all([
    only(rowId, sinceRowId),
    only(sinceRowId, rowId),
    connection.execute<EntryRow[]>(
      `select ${ENTRY_COLUMNS.split(', ')
        .map((c) => `a.${c}`)
        .join(', ')} from snapshot_entries a
       join snapshot_entries b on b.snapshot_row_id = ? and b.path_hash = a.path_hash
       where a.snapshot_row_id = ? and a.type <> 'dir'
         and (a.type <> b.type or not (a.size_bytes <=> b.size_bytes) or not (a.mtime <=> b.mtime))
       order by a.path limit ${limit}`,
      [sinceRowId, rowId],
    ),
    connection.execute<{ name: string; side: string }[]>(
      `select name, 'added' as side from snapshot_tables a where a.snapshot_row_id = ?
         and not exists (select 1 from snapshot_tables b where b.snapshot_row_id = ? and b.name = a.name)
       union all
       select name, 'removed' from snapshot_tables a where a.snapshot_row_id = ?
         and not exists (select 1 from snapshot_tables b where b.snapshot_row_id = ? and b.name = a.name)
       order by name`,
      [rowId, sinceRowId, sinceRowId, rowId],
    ),
  ]);
  const truncated = [added, removed, modified].some((list) => list.length > CHANGES_MAX);
  const cut = (rows: EntryRow[]) => rows.slice(0, CHANGES_MAX).map(viewOf);
  return {
    added: cut(added),
    removed: cut(removed),
    modified: cut(modified),
    tablesAdded: tables.filter((t) => t.side === 'added').map((t) => t.name),
    tablesRemoved: tables.filter((t) => t.side === 'removed').map((t) => t.name),
    truncated,
  };
}

/**
 * Records that the index was read (eviction drops indexes unread for days), at most once an
 * hour per snapshot: a browse is a read, not a write.
 */
export async function touchIndex(
  em: EntityManager,
  rowId: number,
  readAt: Date | null | undefined,
): Promise<void> {
  if (readAt && Date.now() - readAt.getTime() < 3600_000) return;
  await em
    .getConnection()
    .execute('update snapshots set index_read_at = utc_timestamp() where id = ?', [rowId]);
}
