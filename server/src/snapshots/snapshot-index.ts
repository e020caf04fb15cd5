import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/mariadb';
import {
  type Connection,
  type ConnectionConfig,
  createConnection,
  type UpsertResult,
} from 'mariadb';

/**
 * A snapshot's index (DESIGN.md §10): what it holds of one customer, stored per catalog row in
 * snapshot_entries and snapshot_tables. Written by the worker's INDEX task (SnapshotIndexWriter),
 * read by the api (index-read.ts), dropped when unread (evictUnreadIndexes).
 */

export const ENTRY_TYPES = ['file', 'dir', 'symlink', 'other'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

/** A path's key: paths of up to 4,096 bytes do not fit an InnoDB key, their SHA-1 does. */
export function pathHash(path: string): Buffer {
  // The one-shot hash: no Hash object a path (a third of the writer's time with createHash).
  return hash('sha1', path, 'buffer');
}

/** The folder holding a relative path ("" for the content folder itself). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** Unix permission bits (with setuid, setgid, sticky) of a Go os.FileMode as restic prints it. */
export function unixMode(goMode: number): number {
  let mode = goMode & 0o777;
  if (goMode & (1 << 23)) mode |= 0o4000;
  if (goMode & (1 << 22)) mode |= 0o2000;
  if (goMode & (1 << 20)) mode |= 0o1000;
  return mode;
}

export interface IndexEntry {
  path: string;
  type: EntryType;
  size: number | null;
  mtime: string | null;
  /** restic's (Go's) mode. */
  mode: number;
}

/** A node of restic's `ls --json` listing: its path in the snapshot and what the index keeps. */
export interface ListedNode {
  path: string;
  type: EntryType;
  size: number | null;
  mtime: string | null;
  mode: number;
}

/** One line of restic's `ls --json` (as customer-index passes them on); null if not a node. */
export function parseListingLine(line: string): ListedNode | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const node = parsed as Record<string, unknown>;
  if (node.struct_type !== 'node' || typeof node.path !== 'string') return null;
  const type: EntryType =
    node.type === 'file' || node.type === 'dir' || node.type === 'symlink' ? node.type : 'other';
  const size = typeof node.size === 'number' && node.size >= 0 ? node.size : 0;
  const mode = node.mode;
  return {
    path: node.path,
    type,
    size: type === 'file' ? size : null,
    mtime: typeof node.mtime === 'string' ? node.mtime : null,
    mode: typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 ? mode : 0,
  };
}

/** Whether a node is below a folder of the snapshot (not the folder itself). */
export function isBelow(node: ListedNode, root: string): boolean {
  return root !== '' && node.path.length > root.length + 1 && node.path.startsWith(`${root}/`);
}

/** A node below `root` (the content folder's path in the snapshot) as an index entry. */
export function entryBelow(node: ListedNode, root: string): IndexEntry | null {
  if (!isBelow(node, root)) return null;
  return { ...node, path: node.path.slice(root.length + 1) };
}

/** One listing line as an index entry below `root`; null for any other line. */
export function entryOfListingLine(line: string, root: string): IndexEntry | null {
  const node = parseListingLine(line);
  return node && entryBelow(node, root);
}

/** InnoDB keeps a name of 255 characters in the folder index; a file name is at most 255 bytes. */
const NAME_MAX = 255;
const PATH_MAX = 4096;
const TABLE_NAME_MAX = 64;
const BATCH = 1000;
/** LOAD DATA's batches: at most 5,000 rows a statement and a connection... */
const LOAD_BATCH = 5000;
/**
 * ...and their text under 1 MiB: the driver (mariadb 3, packet-output-stream.js) copies a LOAD
 * DATA file whole into its packet buffer, which it grows to 1 MiB, and past that to 16 MiB: a
 * 16 MiB allocation and copy a batch of 1.3 MB (an index's collections did not get fewer for
 * it, measured with --trace-gc). A batch is sent once it holds this much; its last line is at
 * most ~9 KB (a path of 4,096 bytes, escaped, and its name).
 */
const LOAD_BATCH_BYTES = 1_000_000;
/** A batch's buffer: the last line's worst case fits (3 bytes a UTF-16 unit, as append counts). */
const LOAD_BUFFER_BYTES = LOAD_BATCH_BYTES + 3 * 2 * (PATH_MAX + 2 * 255 + 100);
/** Batch buffers kept for the next batch or writer, not allocated a batch (external memory). */
const freeBuffers: Buffer[] = [];

function takeBuffer(bytes: number): Buffer {
  return (
    (bytes <= LOAD_BUFFER_BYTES && freeBuffers.pop()) ||
    Buffer.allocUnsafe(Math.max(bytes, LOAD_BUFFER_BYTES))
  );
}
/**
 * Batches sent at once, each on its own connection: the server works on some while the next
 * is parsed (measured on 20,000 entries on a loaded 2-core machine: one at a time 1.2-2.5 s,
 * two 1.2-1.5 s, four 0.6-1.0 s).
 */
const IN_FLIGHT = 3;
/** A loader connection unused this long is closed (a writer that never finishes leaks none). */
const LOADER_IDLE_MS = 1000;

/**
 * A batch as LOAD DATA reads it: fields by tabs, rows by newlines, backslash escapes (a name
 * or path may hold any of them), \N for NULL; the hashes in hex.
 */
const LOAD_ENTRIES = `load data local infile 'snapshot-entries.tsv' into table snapshot_entries
  character set utf8mb4 fields terminated by '\\t' escaped by '\\\\' lines terminated by '\\n'
  (@path_hash, @parent_hash, kind_rank, name, path, type, size_bytes, mtime, mode)
  set snapshot_row_id = ?, path_hash = unhex(@path_hash), parent_hash = unhex(@parent_hash)`;

/**
 * InnoDB's answers to batches written at once that wait on each other's locks (the unique
 * index's checks lock the rows an index just removed left until they are purged): the
 * statement was rolled back whole, and is to be tried again.
 */
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_LOCK_DEADLOCK = 1213;
const LOCK_CONFLICT_TRIES = 5;

/** A batch's statement, tried again (a few times, after a short random pause) on a lock conflict. */
async function retryLockConflicts(write: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      const conflict = errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
      if (!conflict || attempt >= LOCK_CONFLICT_TRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40 * attempt));
    }
  }
}

/** A duplicate row (the INSERT's upsert keeps one too); any other warning fails the load. */
const ER_DUP_ENTRY = 1062;

function loadField(text: string): string {
  return text.replace(/[\\\t\n\r\0]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\0',
  );
}

/** restic's mtime already in UTC with at least milliseconds (as it writes them on a UTC host). */
const UTC_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\d*(?:Z|\+00:00)$/;

function loadTime(value: string | null): string {
  // As the ORM's connection writes a date (its time zone is UTC): 'YYYY-MM-DD HH:MM:SS.mmm',
  // the fraction cut to milliseconds as Date does; from the text itself when it is UTC.
  if (value && UTC_TIME.test(value)) return `${value.slice(0, 10)} ${value.slice(11, 23)}`;
  const time = mysqlTime(value);
  return time ? time.toISOString().slice(0, 23).replace('T', ' ') : '\\N';
}

/** A path with an empty part, "." or "..": one the index cannot hold (nor a restore name). */
const ODD_PART = /(?:^|\/)\.{0,2}(?:\/|$)/;

export interface IndexWriterOptions {
  /**
   * Rows go by LOAD DATA LOCAL INFILE (a stream of this process, never a file) when the server
   * allows it (local_infile): the server reads them without parsing an INSERT statement, about
   * twice as fast on 20,000 entries; multi-row INSERTs otherwise, or when false.
   */
  bulkLoad?: boolean;
}

function mysqlTime(value: string | null): Date | null {
  if (!value) return null;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? null : time;
}

/**
 * Writes one snapshot's index for one customer: the old one (if any) is removed first, the
 * entries go in batches (one batch written while the next is read), and only finish() marks
 * the catalog row indexed, so a reader never sees half an index.
 */
export class SnapshotIndexWriter {
  /** The batch of multi-row INSERTs: a row of values an entry. */
  private batch: unknown[][] = [];
  /**
   * The batch of LOAD DATA: its text as UTF-8, a line an entry, `used` bytes of `text` (bytes,
   * not a string: a string built of 5,000 lines would live through the young generation's
   * collections, copied by each, most of the worker's time for an index).
   */
  private text: Buffer | null = null;
  private used = 0;
  /**
   * Where each line of the batch starts in `text`, and its path hash's first 32 bits: a batch
   * is sent sorted by the primary key (snapshot_row_id, path_hash). InnoDB then inserts into
   * its clustered index in order instead of at random pages (restic lists by folder, the hash
   * is random): 20,000 rows in five LOAD DATA of 4,000, MariaDB 10.11 here, 250-300 ms in
   * restic's order, 150-160 ms sorted.
   */
  private readonly starts = new Uint32Array(LOAD_BATCH + 1);
  private readonly keys = new Uint32Array(LOAD_BATCH);
  /** Entries in the batch. */
  private batched = 0;
  private inflight: Promise<void>[] = [];
  private failure: unknown = null;
  private readonly tables = new Map<string, number>();
  private count = 0;
  private skipped = 0;
  /** LOAD DATA's connection settings, once begin() has seen the server allow it. */
  private loader: ConnectionConfig | null = null;
  private readonly idle: { connection: Connection; timer: NodeJS.Timeout }[] = [];
  /** The last folder's hash: restic lists a folder's entries one after another. */
  private parent: { path: string; hash: Buffer } | null = null;
  private parentHex: { path: string; hash: string } | null = null;

  constructor(
    private readonly em: EntityManager,
    readonly snapshotRowId: number,
    private readonly options: IndexWriterOptions = {},
  ) {}

  /** How the rows are written: 'load' (LOAD DATA LOCAL INFILE) or 'insert'. */
  get method(): 'load' | 'insert' {
    return this.loader ? 'load' : 'insert';
  }

  get entries(): number {
    return this.count;
  }

  /** Forgets every entry written or waiting (the entries were of another folder). */
  async reset(): Promise<void> {
    this.batch = [];
    this.release(this.text);
    this.text = null;
    this.used = 0;
    this.batched = 0;
    await this.drain();
    await removeIndexRows(this.em, this.snapshotRowId);
    this.count = 0;
    this.skipped = 0;
  }

  /** Removes what an earlier (evicted, or interrupted) index left. */
  async begin(): Promise<void> {
    const connection = this.em.getConnection();
    await connection.execute(
      'update snapshots set indexed_at = null, index_entries = null where id = ?',
      [this.snapshotRowId],
    );
    await removeIndexRows(this.em, this.snapshotRowId);
    if (this.options.bulkLoad !== false) {
      const [allowed] = await connection.execute<{ on: number | string }[]>(
        'select @@local_infile as `on`',
      );
      if (Number(allowed?.on) === 1) {
        this.loader = {
          ...(connection.getConnectionOptions() as ConnectionConfig),
          connectTimeout: 10_000,
          permitLocalInfile: true,
        };
      }
    }
  }

  /** Adds an entry, and sends its batch if that is full. */
  async add(entry: IndexEntry): Promise<void> {
    if (this.put(entry)) await this.send();
  }

  /**
   * Adds an entry to the batch (nothing awaited: a listing's lines are many); true when the
   * batch is full, and send() is due.
   */
  put(entry: IndexEntry): boolean {
    const path = entry.path;
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    // A name or path the index cannot hold whole is left out (the restore names paths
    // from the index, so such a path cannot be chosen; the full restore still has it).
    // (A UTF-16 unit is at most 3 bytes of UTF-8: shorter paths are not measured.)
    if (
      name.length === 0 ||
      name.length > NAME_MAX ||
      (path.length > PATH_MAX / 3 && Buffer.byteLength(path) > PATH_MAX) ||
      ODD_PART.test(path)
    ) {
      this.skipped += 1;
      return false;
    }
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const rank = entry.type === 'dir' ? 0 : 1;
    const size = entry.type === 'file' ? (entry.size ?? 0) : null;
    if (this.loader) {
      // The batch as LOAD DATA reads it, built as the entries come (no row kept a line).
      if (this.parentHex?.path !== parent) {
        this.parentHex = { path: parent, hash: hash('sha1', parent, 'hex') };
      }
      const pathHex = hash('sha1', path, 'hex');
      this.keys[this.batched] = Number.parseInt(pathHex.slice(0, 8), 16);
      this.starts[this.batched] = this.used;
      this.append(
        `${pathHex}\t${this.parentHex.hash}\t${rank}\t${loadField(name)}\t${loadField(path)}\t${entry.type}\t${size ?? '\\N'}\t${loadTime(entry.mtime)}\t${unixMode(entry.mode)}\n`,
      );
    } else {
      if (this.parent?.path !== parent) this.parent = { path: parent, hash: pathHash(parent) };
      this.batch.push([
        this.snapshotRowId,
        pathHash(path),
        this.parent.hash,
        rank,
        name,
        path,
        entry.type,
        size,
        mysqlTime(entry.mtime),
        unixMode(entry.mode),
      ]);
    }
    this.count += 1;
    this.batched += 1;
    if (this.loader) return this.batched >= LOAD_BATCH || this.used >= LOAD_BATCH_BYTES;
    return this.batched >= BATCH;
  }

  private append(line: string): void {
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    const need = this.used + line.length * 3;
    this.text ??= takeBuffer(LOAD_BUFFER_BYTES);
    if (need > this.text.length) {
      // (Not for lines the index holds: the batch is sent at LOAD_BATCH_BYTES.)
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.text.length));
      this.text.copy(grown, 0, 0, this.used);
      this.release(this.text);
      this.text = grown;
    }
    this.used += this.text.write(line, this.used, 'utf8');
  }

  /** A batch buffer no longer read (its batch stored, or dropped) is kept for the next one. */
  private release(buffer: Buffer | null): void {
    if (buffer?.length === LOAD_BUFFER_BYTES && freeBuffers.length < IN_FLIGHT + 2) {
      freeBuffers.push(buffer);
    }
  }

  addTable(name: string, size: number): void {
    if (name.length === 0 || name.length > TABLE_NAME_MAX) return;
    this.tables.set(name, (this.tables.get(name) ?? 0) + size);
  }

  /** Sends the batch (waiting while IN_FLIGHT batches are being written). */
  async send(): Promise<void> {
    const rows = this.batch.sort((a, b) => Buffer.compare(a[1] as Buffer, b[1] as Buffer));
    const buffer = this.sortedText();
    const text = buffer?.subarray(0, this.used);
    const batched = this.batched;
    this.batch = [];
    this.text = null;
    this.used = 0;
    this.batched = 0;
    while (this.inflight.length >= IN_FLIGHT) await this.inflight.shift();
    if (this.failure !== null || batched === 0) {
      this.release(buffer);
      this.throwIfFailed();
      return;
    }
    // Its failure is kept (and thrown by the next send or finish), never left unhandled.
    this.inflight.push(
      retryLockConflicts(() =>
        this.loader && text ? this.load(this.loader, text) : this.insert(rows),
      ).then(
        () => this.release(buffer),
        (error: unknown) => {
          this.failure ??= error;
        },
      ),
    );
  }

  /** The batch's lines in the order of their path hashes, in a buffer of their own. */
  private sortedText(): Buffer | null {
    const text = this.text;
    const n = this.batched;
    if (!text || n < 2) return text;
    const { starts, keys } = this;
    starts[n] = this.used;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => (keys[a] ?? 0) - (keys[b] ?? 0));
    const sorted = takeBuffer(this.used);
    let at = 0;
    for (const i of order) at += text.copy(sorted, at, starts[i], starts[i + 1]);
    this.release(text);
    return sorted;
  }

  private async insert(rows: unknown[][]): Promise<void> {
    await this.em.getConnection().execute(
      `insert into snapshot_entries (snapshot_row_id, path_hash, parent_hash, kind_rank, name,
         path, type, size_bytes, mtime, mode) values ${rows.map(() => '(?,?,?,?,?,?,?,?,?,?)').join(',')}
       on duplicate key update type = values(type)`,
      rows.flat(),
    );
  }

  /**
   * One batch by LOAD DATA LOCAL INFILE. The server treats its rows as INSERT IGNORE does
   * (it cannot stop the client's stream): a row it could not store whole is a warning, and
   * fails the batch here as an INSERT's error would.
   */
  private async load(config: ConnectionConfig, data: Buffer): Promise<void> {
    const idle = this.idle.pop();
    if (idle) clearTimeout(idle.timer);
    const connection = idle?.connection ?? (await createConnection(config));
    let healthy = false;
    try {
      const result = (await connection.query(
        { sql: LOAD_ENTRIES, infileStreamFactory: () => Readable.from([data]) },
        [this.snapshotRowId],
      )) as UpsertResult;
      if (result.warningStatus > 0) {
        const warnings = (await connection.query('show warnings')) as {
          Code: number;
          Message: string;
        }[];
        const other = warnings.find((warning) => Number(warning.Code) !== ER_DUP_ENTRY);
        if (other) throw new Error(`the index rows could not be stored: ${other.Message}`);
      }
      healthy = true;
    } finally {
      if (healthy) {
        const timer = setTimeout(() => {
          const at = this.idle.findIndex((entry) => entry.connection === connection);
          if (at >= 0) this.idle.splice(at, 1);
          void connection.end().catch(() => connection.destroy());
        }, LOADER_IDLE_MS);
        timer.unref();
        this.idle.push({ connection, timer });
      } else {
        connection.destroy();
      }
    }
  }

  /** Closes the loader's connections (finish does; a writer given up should too). */
  async close(): Promise<void> {
    await Promise.all(
      this.idle.splice(0).map(({ connection, timer }) => {
        clearTimeout(timer);
        return connection.end().catch(() => connection.destroy());
      }),
    );
  }

  private async drain(): Promise<void> {
    await Promise.all(this.inflight.splice(0));
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  /** Writes what is left and marks the catalog row indexed. */
  async finish(contentFolder: string | null): Promise<{ entries: number; skipped: number }> {
    try {
      await this.send();
      await this.drain();
    } finally {
      await this.close();
    }
    const connection = this.em.getConnection();
    const tables = [...this.tables];
    for (let i = 0; i < tables.length; i += BATCH) {
      const part = tables.slice(i, i + BATCH);
      await connection.execute(
        `insert into snapshot_tables (snapshot_row_id, name, size_bytes)
         values ${part.map(() => '(?,?,?)').join(',')}
         on duplicate key update size_bytes = values(size_bytes)`,
        part.flatMap(([name, size]) => [this.snapshotRowId, name, size]),
      );
    }
    await connection.execute(
      `update snapshots set indexed_at = utc_timestamp(), index_read_at = utc_timestamp(),
         index_entries = ?, content_folder = ? where id = ?`,
      [this.count, contentFolder || null, this.snapshotRowId],
    );
    return { entries: this.count, skipped: this.skipped };
  }
}

/** Every index row of a catalog row, in pieces (an index can hold millions of rows). */
async function removeIndexRows(em: EntityManager, snapshotRowId: number): Promise<void> {
  const connection = em.getConnection();
  for (;;) {
    const result = await connection.execute<{ affectedRows: number }>(
      'delete from snapshot_entries where snapshot_row_id = ? limit 10000',
      [snapshotRowId],
      'run',
    );
    if (result.affectedRows < 10000) break;
  }
  await connection.execute('delete from snapshot_tables where snapshot_row_id = ?', [
    snapshotRowId,
  ]);
}

/**
 * Drops the indexes of this node's customers that nobody read for `keepDays`, and what an
 * interrupted indexing left (rows of a catalog row not marked indexed, with no INDEX job of its
 * customer active). The catalog row says it is no longer indexed.
 */
export async function evictUnreadIndexes(
  em: EntityManager,
  node: string,
  keepDays: number,
): Promise<number> {
  const connection = em.getConnection();
  const stale = await connection.execute<{ id: number }[]>(
    `select s.id from snapshots s join customers c on c.id = s.customer_id
     where c.host = ? and (
       (s.indexed_at is not null and coalesce(s.index_read_at, s.indexed_at) < utc_timestamp() - interval ? day)
       or (s.indexed_at is null and exists (select 1 from snapshot_entries e where e.snapshot_row_id = s.id)
           and not exists (select 1 from backup_jobs j where j.customer_id = s.customer_id
             and j.kind = 'index' and j.status in ('pending', 'running'))))`,
    [node, keepDays],
  );
  for (const { id } of stale) {
    await connection.execute(
      'update snapshots set indexed_at = null, index_entries = null where id = ?',
      [id],
    );
    await removeIndexRows(em, id);
  }
  return stale.length;
}
