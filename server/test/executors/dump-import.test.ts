// The dump holds text the customer wrote (routine and trigger bodies, row data). These tests
// are the customer as attacker: text that a line-by-line rewrite of the dump would turn into
// SQL must stay text, and another customer's database must come out of the restore untouched
// (restore-privileges.test.ts: whatever the text, the import cannot reach it).
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  dbManifest,
  destroyTestEnv,
  dropCustomerDatabases,
  randomCustomerId,
  run,
  siteAccount,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
const B = A + 1;

beforeAll(async () => {
  t = await createTestEnv();
  await buildSite(t.customersRoot, A);
  await buildSite(t.customersRoot, B, 'wordpress', 'b');
  await createCustomerDatabase(A);
  await createCustomerDatabase(B);
});

afterAll(async () => {
  await dropCustomerDatabases(A);
  await dropCustomerDatabases(B);
  await destroyTestEnv(t);
});

/** Backs up A's database (or its site too), changes it, restores the database. */
async function backupChangeRestore(backupScope: 'db' | 'both' = 'db') {
  const b = await run(t, 'customer-backup', [String(A), backupScope]);
  expect(b.exitCode, b.stderr).toBe(0);
  await sql(`UPDATE customer_${A}.posts SET title = 'after the backup' WHERE id = 1`);
  const changed = await dbManifest(A);
  const r = await run(t, 'customer-restore', [
    String(A),
    String(snapshotEvent(b.events)?.id),
    'db',
    'manual',
  ]);
  return { r, changed };
}

describe("a restore imports the customer's own text as text", () => {
  it("routines, triggers and rows that name databases are restored exactly, and B's database is untouched", async () => {
    const a = `customer_${A}`;
    const b = `customer_${B}`;
    const site = siteAccount(A);
    // Each string below is harmless SQL as written. A rewrite that removes "`customer_A`." or
    // "customer_A." from lines of the dump leaves a backslash before the closing quote, the
    // string ends later, and the UPDATE of B's database runs as the import's account.
    await sql(`
      CREATE DEFINER = ${site} PROCEDURE ${a}.quoted() SELECT 'a\\\`${a}\`.', ' ;; UPDATE ${b}.options SET value = 0x41 ;; DO 1 #';
      CREATE DEFINER = ${site} PROCEDURE ${a}.plain() SELECT 'a\\ ${a}.', ' ;; UPDATE ${b}.options SET value = 0x42 ;; DO 1 #';
      CREATE DEFINER = ${site} TRIGGER ${a}.qualified BEFORE UPDATE ON ${a}.options FOR EACH ROW
        SET NEW.value = CONCAT(NEW.value, 'c\\ ${a}.', ' ;; UPDATE ${b}.options SET value = 0x43 ;; DO 1 #');
      INSERT INTO ${a}.options VALUES ('note', ' ${a}.example and \`${a}\`.example, ${a}.x');
    `);
    const before = await dbManifest(A);
    const beforeB = await dbManifest(B);
    expect(before).toContain('CREATE DEFINER');
    expect(before).toContain(`' ${a}.example and \`${a}\`.example, ${a}.x'`);

    const { r } = await backupChangeRestore();
    expect(r.exitCode, r.stderr).toBe(0);
    // B: not a byte changed.
    expect(await dbManifest(B)).toEqual(beforeB);
    expect(await sql(`SELECT value FROM ${b}.options ORDER BY name`)).not.toMatch(/^[ABC]$/m);
    // A: byte for byte as backed up (the routines' text, the row), except that the trigger
    // was created where it was restored to: its name and table are no longer qualified.
    expect(await dbManifest(A)).toEqual(
      before.replace(
        `TRIGGER ${a}.qualified BEFORE UPDATE ON ${a}.options`,
        'TRIGGER qualified BEFORE UPDATE ON options',
      ),
    );
    expect(
      await sql(
        `SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${a}' AND TRIGGER_NAME = 'qualified'`,
      ),
    ).toBe('1');
  });

  it("a customer_N.sql in the customer's site folder is a file of the site: the restore imports the backup's own dump", async () => {
    // A file the customer can put beside their content (an upload, their own download put
    // back), named as the backup names its dump, sorting before the dump folder's.
    const planted = path.join(t.customersRoot, `customer-${A}`, `customer_${A}.sql`);
    await writeFile(planted, 'CREATE TABLE planted (x int);\n-- Dump completed\n');
    try {
      const before = await dbManifest(A);
      const { r } = await backupChangeRestore('both');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await dbManifest(A)).toEqual(before);
      expect(await sql(`SHOW TABLES FROM customer_${A} LIKE 'planted'`)).toBe('');
    } finally {
      await rm(planted, { force: true });
    }
  });

  it('a routine holding a line that switches databases is restored as text: B is untouched', async () => {
    const a = `customer_${A}`;
    const b = `customer_${B}`;
    // The import account cannot switch to B's database; the line is text in a string anyway.
    await sql(`CREATE DEFINER = ${siteAccount(A)} PROCEDURE ${a}.switches() SELECT '
USE ${b};
UPDATE ${b}.options SET value = 0x44;'`);
    const before = await dbManifest(A);
    const beforeB = await dbManifest(B);

    const { r } = await backupChangeRestore();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await dbManifest(A)).toEqual(before);
    expect(await dbManifest(B)).toEqual(beforeB);
    await sql(`DROP PROCEDURE ${a}.switches`);
  });
});
