import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  dbManifest,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  exists,
  filesManifest,
  randomCustomerId,
  run,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
const B = A + 1;
let legacyRoot: string;
let legacyId: string;
let legacyA: { files: string[]; db: string };
let liveB: { files: string[]; db: string };

beforeAll(async () => {
  legacyRoot = path.join((await createTestEnv()).dataDir, 'legacy');
  t = await createTestEnv({
    BACKUPS_LEGACY_DUMP_DIR: path.join(legacyRoot, 'shophosting-db-dumps'),
  });
  // The original plan's daily job: one snapshot of /var/customers (all sites)
  // plus the dump folder, tagged "daily" only; dumps made with --databases.
  const customers = path.join(legacyRoot, 'var', 'customers');
  await buildSite(customers, A, 'volumes/files', 'legacy-a');
  await buildSite(customers, B, 'volumes/files', 'legacy-b');
  await createCustomerDatabase(A);
  await createCustomerDatabase(B);
  // A folder whose name holds a newline: read line by line, it would name customer C.
  await mkdir(path.join(customers, `customer-${A + 7}\nnotes`));
  const dumps = path.join(legacyRoot, 'shophosting-db-dumps');
  await mkdir(dumps, { recursive: true });
  for (const id of [A, B]) {
    const d = await execa(
      'mysqldump',
      ['-uroot', '--single-transaction', '--databases', `customer_${id}`],
      { encoding: 'buffer', stripFinalNewline: false },
    );
    await writeFile(path.join(dumps, `customer_${id}.sql`), d.stdout);
  }
  legacyA = {
    files: await filesManifest(path.join(customers, `customer-${A}`, 'volumes/files')),
    db: await dbManifest(A),
  };
  const r = await execa('restic', ['backup', '--json', '--tag', 'daily', customers, dumps], {
    env: {
      RESTIC_REPOSITORY: path.join(t.dataDir, 'repos', 'daily'),
      RESTIC_PASSWORD_FILE: path.join(t.dataDir, 'secrets', 'daily-repository.pass'),
      RESTIC_CACHE_DIR: path.join(t.dataDir, 'cache', 'restic'),
    },
  });
  legacyId = JSON.parse(r.stdout.split('\n').filter(Boolean).pop() as string).snapshot_id;
  // The live sites have moved on since.
  await buildSite(t.customersRoot, A, 'volumes/files', 'live-a');
  await buildSite(t.customersRoot, B, 'volumes/files', 'live-b');
  await sql(`DELETE FROM customer_${A}.posts; CREATE TABLE customer_${A}.later (a INT);
    UPDATE customer_${B}.options SET value = 'live-b'`);
  liveB = {
    files: await filesManifest(path.join(t.customersRoot, `customer-${B}`, 'volumes/files')),
    db: await dbManifest(B),
  };
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await dropCustomerDatabases(B);
  await destroyTestEnv(t);
  await rm(path.dirname(legacyRoot), { recursive: true, force: true });
});

describe('legacy daily repository (original plan)', () => {
  it("restores A's files and database from a many-customer snapshot, never B's", async () => {
    const r = await run(t, 'customer-restore', [String(A), legacyId, 'both', 'daily']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(
      await filesManifest(path.join(t.customersRoot, `customer-${A}`, 'volumes/files')),
    ).toEqual(legacyA.files);
    expect(await dbManifest(A)).toEqual(legacyA.db);
    expect(
      await filesManifest(path.join(t.customersRoot, `customer-${B}`, 'volumes/files')),
    ).toEqual(liveB.files);
    expect(await dbManifest(B)).toEqual(liveB.db);
  });

  it("a drill of A's part of the many-customer snapshot is VERIFIED, read level by level as a restore reads it", async () => {
    const r = await run(t, 'customer-verify', [String(A), legacyId, 'daily']);
    expect(r.exitCode, r.stderr).toBe(0);
    const v = r.events.find((e) => e.type === 'verification');
    // buildSite: 5 x 6 x 7 php files, image.bin, the non-ASCII file, wp-config.php
    expect(v).toMatchObject({ status: 'verified', snapshot: legacyId, files: 213, tables: 4 });
    expect(r.stderr).not.toMatch(/The drill needs at most/);
    expect(await exists(path.join(t.customersRoot, '.verify'))).toBe(false);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_verify'`)).toBe('');
  });

  it('refuses a new-style daily snapshot of B for A', async () => {
    const b = await run(t, 'customer-backup', [String(B), 'both', '--source', 'daily']);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(snapshotEvent(b.events)?.tags).toEqual(
      expect.arrayContaining([`customer-${B}`, 'daily', 'both']),
    );
    const before = await dbManifest(A);
    const r = await run(t, 'customer-restore', [
      String(A),
      String(snapshotEvent(b.events)?.id),
      'both',
      'daily',
    ]);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
    expect(await dbManifest(A)).toEqual(before);
  });

  it('its members are the customers whose folder or dump it holds, whatever other names hold', async () => {
    const r = await run(t, 'backup-repository', ['daily', 'members', '--snapshot', legacyId]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.events).toEqual([
      { type: 'member', customer: A },
      { type: 'member', customer: B },
    ]);
  });

  it('refuses the legacy snapshot for a customer it does not hold', async () => {
    const C = A + 2;
    await buildSite(t.customersRoot, C);
    const r = await run(t, 'customer-restore', [String(C), legacyId, 'files', 'daily']);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
  });
});

describe('legacy daily repository: part of it', () => {
  it("restores one of A's files and one of A's tables from the many-customer snapshot; B's folder cannot be named", async () => {
    const files = path.join(t.customersRoot, `customer-${A}`, 'volumes/files');
    const file = 'wp-content-3/plugins-2/file-1.php';
    const backedUp = (await filesManifest(files)).find((l) => l.startsWith(`${file} `));
    const options = await sql(`SELECT * FROM customer_${A}.options ORDER BY name`);
    await writeFile(path.join(files, file), 'edited live');
    await sql(
      `UPDATE customer_${A}.options SET value = 'live'; INSERT INTO customer_${A}.posts (title) VALUES ('live')`,
    );
    const posts = await sql(`SELECT * FROM customer_${A}.posts ORDER BY id`);
    const args = path.join(t.dataDir, 'partial-args');
    await mkdir(args, { recursive: true });
    await writeFile(path.join(args, 'paths'), `${file}\0`);
    await writeFile(path.join(args, 'tables'), 'options\n');
    const r = await run(t, 'customer-restore', [
      String(A),
      legacyId,
      'both',
      'daily',
      '--paths-from',
      path.join(args, 'paths'),
      '--tables-from',
      path.join(args, 'tables'),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await filesManifest(files)).find((l) => l.startsWith(`${file} `))).toBe(backedUp);
    expect(await sql(`SELECT * FROM customer_${A}.options ORDER BY name`)).toBe(options);
    expect(await sql(`SELECT * FROM customer_${A}.posts ORDER BY id`)).toBe(posts);
    expect(
      await filesManifest(path.join(t.customersRoot, `customer-${B}`, 'volumes/files')),
    ).toEqual(liveB.files);
    expect(await dbManifest(B)).toEqual(liveB.db);

    // B's folder is outside A's content folder: only a path with ".." could name it
    await writeFile(path.join(args, 'b'), `../../customer-${B}/volumes/files/${file}\0`);
    const b = await run(t, 'customer-restore', [
      String(A),
      legacyId,
      'files',
      'daily',
      '--paths-from',
      path.join(args, 'b'),
    ]);
    expect(b.exitCode).toBe(2);
    expect(errorCode(b.events)).toBe('INVALID_ARGUMENT');
    // and B's database is not a table of A's dump
    await writeFile(path.join(args, 'bt'), `customer_${B}.options\n`);
    const bt = await run(t, 'customer-restore', [
      String(A),
      legacyId,
      'db',
      'daily',
      '--tables-from',
      path.join(args, 'bt'),
    ]);
    expect(bt.exitCode).toBe(3);
    expect(errorCode(bt.events)).toBe('TABLE_NOT_FOUND');
    expect(await dbManifest(B)).toEqual(liveB.db);
  });
});
