import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createDemoSite } from '../../src/customers/demo-site.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import type { WorkerHandle } from '../../src/worker/worker.js';
import { sql } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

interface EntryRow {
  path: string;
  name: string;
  type: string;
  size_bytes: number | null;
  mode: number;
  parent: string;
}

/** Every file, folder and symlink under `root`, relative, with what the index should say. */
async function walk(
  root: string,
  rel = '',
): Promise<Map<string, { type: string; size: number | null; mode: number }>> {
  const found = new Map<string, { type: string; size: number | null; mode: number }>();
  for (const name of await readdir(path.join(root, rel))) {
    const relPath = rel ? `${rel}/${name}` : name;
    const st = await lstat(path.join(root, relPath));
    const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'file';
    found.set(relPath, { type, size: type === 'file' ? st.size : null, mode: st.mode & 0o7777 });
    if (type === 'dir') for (const [k, v] of await walk(root, relPath)) found.set(k, v);
  }
  return found;
}

describe('indexing a snapshot (INDEX jobs)', () => {
  let world: WorkerWorld;
  let worker: WorkerHandle;
  let customer: ICustomer;
  const node = 'node-i';
  const em = () => world.db.orm.em.fork();

  const entries = async (rowId: number) =>
    em()
      .getConnection()
      .execute<EntryRow[]>(
        `select path, name, type, size_bytes, mode, lower(hex(parent_hash)) as parent
         from snapshot_entries where snapshot_row_id = ? order by path`,
        [rowId],
      );
  const tables = async (rowId: number) =>
    (
      await em()
        .getConnection()
        .execute<{ name: string; size_bytes: number }[]>(
          'select name, size_bytes from snapshot_tables where snapshot_row_id = ? order by name',
          [rowId],
        )
    ).map((t) => t.name);

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer(node);
    worker = await world.startWorker(node, { BACKUPS_INDEX_NEW_BACKUPS: 'true' });
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it('a new manual backup is indexed right after it is made: every file, folder and symlink, and the tables', async () => {
    const content = path.join(
      world.scriptsEnv.customersRoot,
      `customer-${customer.id}`,
      'wordpress',
    );
    const deep = path.join(content, 'wp-content/uploads/2026/03/deep/er');
    await mkdir(deep, { recursive: true });
    await writeFile(path.join(deep, 'note.txt'), 'twelve bytes');
    await chmod(path.join(deep, 'note.txt'), 0o640);
    await symlink('/etc', path.join(content, 'etc-link'));

    const backup = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
    });
    expect(backup.status, backup.errorMessage ?? '').toBe('completed');
    const index = await waitForIndexJob(backup.snapshotId ?? '');
    expect(index.status, index.errorMessage ?? '').toBe('completed');
    expect(index.progress).toBe(1);
    expect(index.requestedByKind).toBe(backup.requestedByKind);

    const row = await em().findOneOrFail(Snapshot, {
      customer: customer.id,
      snapshotId: backup.snapshotId ?? '',
    });
    expect(row.indexedAt).toBeInstanceOf(Date);
    expect(row.contentFolder).toBe('wordpress');
    const stored = await entries(row.id);
    const onDisk = await walk(content);
    expect(stored.map((e) => e.path)).toEqual(
      [...onDisk.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    expect(row.indexEntries).toBe(onDisk.size);
    for (const entry of stored) {
      const disk = onDisk.get(entry.path);
      expect({
        path: entry.path,
        type: entry.type,
        size: entry.size_bytes === null ? null : Number(entry.size_bytes),
      }).toEqual({
        path: entry.path,
        type: disk?.type,
        size: disk?.size,
      });
      if (entry.type !== 'symlink') expect(entry.mode, entry.path).toBe(disk?.mode);
      const folder = entry.path.includes('/')
        ? entry.path.slice(0, entry.path.lastIndexOf('/'))
        : '';
      expect(entry.parent, entry.path).toBe(createHash('sha1').update(folder).digest('hex'));
    }
    const note = stored.find((e) => e.path === 'wp-content/uploads/2026/03/deep/er/note.txt');
    expect(note).toMatchObject({ name: 'note.txt', type: 'file', mode: 0o640 });
    expect(Number(note?.size_bytes)).toBe(12);
    expect(stored.find((e) => e.path === 'etc-link')?.type).toBe('symlink');
    // Only the site's content: nothing of the host's layout, nothing outside the folder.
    expect(stored.some((e) => e.path.startsWith('/') || e.path.includes('customer-'))).toBe(false);
    // The dump's tables (the view post_titles is not a table).
    expect(await tables(row.id)).toEqual(['audit', 'media', 'options', 'posts']);
  });

  it('a site holding both wordpress/ and volumes/files/ is indexed by its wordpress folder alone, though the listing passes volumes/files first', async () => {
    const site = path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);
    const volumes = path.join(site, 'volumes/files/deep');
    await mkdir(volumes, { recursive: true });
    await writeFile(path.join(volumes, 'in-volumes.txt'), 'not the content folder');
    try {
      const backup = await world.runJob({
        customer,
        kind: 'backup',
        scope: 'files',
        source: 'manual',
      });
      expect(backup.status, backup.errorMessage ?? '').toBe('completed');
      const index = await waitForIndexJob(backup.snapshotId ?? '');
      expect(index.status, index.errorMessage ?? '').toBe('completed');
      const row = await em().findOneOrFail(Snapshot, {
        customer: customer.id,
        snapshotId: backup.snapshotId ?? '',
      });
      expect(row.contentFolder).toBe('wordpress');
      const stored = (await entries(row.id)).map((e) => e.path);
      const onDisk = [...(await walk(path.join(site, 'wordpress'))).keys()];
      expect(stored).toEqual(onDisk.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(row.indexEntries).toBe(onDisk.length);
    } finally {
      await rm(path.join(site, 'volumes'), { recursive: true, force: true });
    }
  });

  it("a legacy daily snapshot of several sites gives customer A only A's files and tables", async () => {
    const b = await world.customer(node);
    const legacy = path.join(world.scriptsEnv.dataDir, 'legacy');
    const sites = path.join(legacy, 'var/customers');
    const dumps = path.join(legacy, 'shophosting-db-dumps');
    await mkdir(dumps, { recursive: true });
    await createDemoSite(sites, customer.id, 'volumes/files');
    await createDemoSite(sites, b.id, 'volumes/files');
    await writeFile(path.join(sites, `customer-${b.id}`, 'volumes/files', 'only-b.txt'), 'b');
    await sql(
      `CREATE TABLE customer_${b.id}.b_only (a INT); INSERT INTO customer_${b.id}.b_only VALUES (1)`,
    );
    for (const id of [customer.id, b.id]) {
      const d = await execa(
        'mysqldump',
        ['-uroot', '--single-transaction', '--databases', `customer_${id}`],
        {
          encoding: 'buffer',
          stripFinalNewline: false,
        },
      );
      await writeFile(path.join(dumps, `customer_${id}.sql`), d.stdout);
    }
    const r = await execa('restic', ['backup', '--json', '--tag', 'daily', sites, dumps], {
      env: world.resticEnv('daily'),
    });
    const legacyId = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}').snapshot_id as string;
    await worker.syncCatalog();

    const job = await world.runJob({
      customer,
      kind: 'index',
      scope: 'both',
      source: 'daily',
      snapshotId: legacyId,
    });
    expect(job.status, job.errorMessage ?? '').toBe('completed');
    const rowA = await em().findOneOrFail(Snapshot, {
      customer: customer.id,
      snapshotId: legacyId,
    });
    const rowB = await em().findOneOrFail(Snapshot, { customer: b.id, snapshotId: legacyId });
    const stored = await entries(rowA.id);
    const aFiles = await walk(path.join(sites, `customer-${customer.id}`, 'volumes/files'));
    expect(stored.map((e) => e.path).sort()).toEqual([...aFiles.keys()].sort());
    expect(stored.some((e) => e.path.includes('only-b'))).toBe(false);
    expect(rowA.contentFolder).toBe('volumes/files');
    expect(await tables(rowA.id)).toEqual(['audit', 'media', 'options', 'posts']);
    // B's catalog row of the same snapshot has no index of its own.
    expect(rowB.indexedAt).toBeNull();
    expect(await entries(rowB.id)).toEqual([]);
  });

  it('an index nobody read for BACKUPS_INDEX_KEEP_DAYS is dropped, and the catalog row says so', async () => {
    const [row] = await em().find(Snapshot, {
      customer: customer.id,
      source: 'manual',
      indexedAt: { $ne: null },
    });
    if (!row) throw new Error('no indexed snapshot');
    await sql(
      `update snapshots set index_read_at = utc_timestamp() - interval 8 day where id = ${row.id}`,
      world.db.name,
    );
    await worker.syncCatalog();
    const after = await em().findOneOrFail(Snapshot, row.id);
    expect(after.indexedAt).toBeNull();
    expect(await entries(row.id)).toEqual([]);
    expect(await tables(row.id)).toEqual([]);
  });

  async function waitForIndexJob(snapshotId: string) {
    const until = Date.now() + 60_000;
    for (;;) {
      const job = await em().findOne(BackupJob, { kind: 'index', snapshotId });
      if (job && ['completed', 'failed'].includes(job.status)) return job;
      if (Date.now() > until) throw new Error(`no finished index job for ${snapshotId}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
