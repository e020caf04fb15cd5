import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { type IndexEntry, SnapshotIndexWriter } from '../../src/snapshots/snapshot-index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildCustomer } from '../support/factories.js';

/**
 * The index writer's two ways of storing rows (LOAD DATA LOCAL INFILE when the server allows
 * it, multi-row INSERTs otherwise) store the same rows, whatever a name holds.
 */
const ENTRIES: IndexEntry[] = [
  {
    path: 'wp-content',
    type: 'dir',
    size: null,
    mtime: '2026-03-01T10:00:00.123456789Z',
    mode: 2147484141,
  },
  {
    path: 'wp-content/tab\there.txt',
    type: 'file',
    size: 12,
    mtime: '2026-03-01T10:00:01Z',
    mode: 0o644,
  },
  {
    path: 'wp-content/new\nline',
    type: 'file',
    size: 0,
    mtime: '2026-03-01T12:00:01+02:00',
    mode: 0o600,
  },
  { path: 'wp-content/back\\slash\\N', type: 'file', size: 5, mtime: null, mode: 0o644 },
  { path: 'wp-content/\\N', type: 'file', size: 1, mtime: '1999-12-31T23:59:59.999Z', mode: 0o644 },
  {
    path: 'wp-content/quote\'s "both"',
    type: 'file',
    size: 7,
    mtime: '2026-03-01T10:00:00Z',
    mode: 0o644,
  },
  {
    path: 'wp-content/crlf\r\n',
    type: 'file',
    size: 2,
    mtime: '2026-03-01T10:00:00Z',
    mode: 0o644,
  },
  {
    path: 'wp-content/Grüße 😀.txt',
    type: 'file',
    size: 2 ** 40,
    mtime: '2026-03-01T10:00:00Z',
    mode: 0o644,
  },
  {
    path: 'wp-content/setuid',
    type: 'file',
    size: 3,
    mtime: '2026-03-01T10:00:00Z',
    mode: (1 << 23) | 0o755,
  },
  {
    path: 'wp-content/link',
    type: 'symlink',
    size: null,
    mtime: '2026-03-01T10:00:00Z',
    mode: 0o777,
  },
  {
    path: 'wp-content/fifo',
    type: 'other',
    size: null,
    mtime: '2026-03-01T10:00:00Z',
    mode: 0o644,
  },
  // Left out by both: a path the index cannot hold.
  { path: 'wp-content/../escape', type: 'file', size: 1, mtime: null, mode: 0o644 },
];

describe('the snapshot index writer', () => {
  let db: TestDatabase;
  let customer: ICustomer;
  let localInfile: boolean;

  const catalogRow = async () => {
    const id = randomBytes(32).toString('hex');
    const inserted = (await db.orm.em
      .fork()
      .getConnection()
      .execute(
        `insert into snapshots (source, snapshot_id, short_id, customer_id, time, scope, paths, tags, synced_at)
         values ('manual', ?, ?, ?, utc_timestamp(), 'files', '[]', '[]', utc_timestamp())`,
        [id, id.slice(0, 8), customer.id],
        'run',
      )) as { insertId: number };
    return inserted.insertId;
  };
  const rows = (rowId: number) =>
    db.orm.em
      .fork()
      .getConnection()
      .execute<Record<string, unknown>[]>(
        `select hex(path_hash) as path_hash, hex(parent_hash) as parent_hash, kind_rank, name, path,
           type, size_bytes, date_format(mtime, '%Y-%m-%d %H:%i:%s.%f') as mtime, mode
         from snapshot_entries where snapshot_row_id = ? order by path_hash`,
        [rowId],
      );
  const write = async (rowId: number, bulkLoad: boolean, entries: IndexEntry[]) => {
    const writer = new SnapshotIndexWriter(db.orm.em.fork(), rowId, { bulkLoad });
    await writer.begin();
    for (const entry of entries) await writer.add(entry);
    return { writer, result: await writer.finish('wordpress') };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    customer = await buildCustomer(db.orm.em.fork());
    const [setting] = await db.orm.em
      .fork()
      .getConnection()
      .execute<{ on: number }[]>('select @@local_infile as `on`');
    localInfile = Number(setting?.on) === 1;
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('stores the same rows by LOAD DATA as by INSERT, tabs, newlines, backslashes and \\N in names too', async () => {
    const loaded = await catalogRow();
    const inserted = await catalogRow();
    const load = await write(loaded, true, ENTRIES);
    const insert = await write(inserted, false, ENTRIES);
    expect(load.writer.method).toBe(localInfile ? 'load' : 'insert');
    expect(insert.writer.method).toBe('insert');
    expect(load.result).toEqual({ entries: ENTRIES.length - 1, skipped: 1 });
    expect(insert.result).toEqual(load.result);
    const byLoad = await rows(loaded);
    expect(byLoad).toEqual(await rows(inserted));
    expect(byLoad.map((r) => r.path).sort()).toEqual(
      ENTRIES.slice(0, -1)
        .map((e) => e.path)
        .sort(),
    );
    const nul = byLoad.find((r) => r.path === 'wp-content/\\N');
    expect(nul).toMatchObject({ name: '\\N', mtime: '1999-12-31 23:59:59.999000' });
    expect(byLoad.find((r) => r.path === 'wp-content/back\\slash\\N')?.mtime).toBeNull();
    expect(byLoad.find((r) => r.path === 'wp-content/new\nline')?.mtime).toBe(
      '2026-03-01 10:00:01.000000',
    );
    expect(byLoad.find((r) => r.path === 'wp-content/setuid')?.mode).toBe(0o4755);
  });

  it('stores every row of batches larger than one, and a row it cannot store fails the index', async () => {
    const many: IndexEntry[] = Array.from({ length: 12_345 }, (_, i) => ({
      path: `uploads/${String(Math.floor(i / 50))}/file-${i}.txt`,
      type: 'file',
      size: i,
      mtime: '2026-03-01T10:00:00Z',
      mode: 0o644,
    }));
    for (const bulkLoad of [true, false]) {
      const rowId = await catalogRow();
      const { result } = await write(rowId, bulkLoad, many);
      expect(result.entries).toBe(many.length);
      expect((await rows(rowId)).length).toBe(many.length);
      // A catalog row that is gone (its customer removed meanwhile): no row can be stored,
      // and the load says so as the INSERT does (LOAD DATA LOCAL only warns of it).
      await expect(write(999_999_999, bulkLoad, many.slice(0, 10))).rejects.toThrow();
    }
  });

  it('stores long paths whole through batches cut by size and buffers used again, two indexes at once', async () => {
    // ~700-byte lines: a batch is cut at 1 MB (about 1,400 rows), not at 5,000 rows, and the
    // batch buffers of one index go on to the next batch and to the other index.
    const long = (tag: string) =>
      Array.from({ length: 7_000 }, (_, i) => ({
        path: `${tag}-${'d'.repeat(150)}/${String(Math.floor(i / 40))}-${'e'.repeat(150)}/${'f'.repeat(100)}-${tag}-${i}.txt`,
        type: 'file' as const,
        size: i,
        mtime: '2026-03-01T10:00:00Z',
        mode: 0o644,
      }));
    const first = long('a');
    const second = long('b');
    const [rowA, rowB] = [await catalogRow(), await catalogRow()];
    const [a, b] = await Promise.all([write(rowA, true, first), write(rowB, true, second)]);
    expect(a.result.entries).toBe(first.length);
    expect(b.result.entries).toBe(second.length);
    for (const [rowId, entries] of [
      [rowA, first],
      [rowB, second],
    ] as const) {
      const stored = await rows(rowId);
      expect(stored.map((r) => r.path).sort()).toEqual(entries.map((e) => e.path).sort());
      expect(new Set(stored.map((r) => r.name)).size).toBe(entries.length);
      expect(
        stored.every(
          (r) => Number(r.size_bytes) === Number(String(r.name).split('-').at(-1)?.split('.')[0]),
        ),
      ).toBe(true);
    }
  });
});
