import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  listedEntries,
  randomCustomerId,
  run,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
const B = A + 1;
let snapshotOfB: string;

beforeAll(async () => {
  t = await createTestEnv();
  await buildSite(t.customersRoot, B, 'wordpress', 'b');
  await createCustomerDatabase(B);
  // Names a dump quotes: a backquote (doubled in the dump), spaces, non-ASCII.
  await sql(
    `CREATE TABLE customer_${B}.\`odd\`\`name ü\` (a INT); INSERT INTO customer_${B}.\`odd\`\`name ü\` VALUES (1), (2)`,
  );
  const b = await run(t, 'customer-backup', [String(B), 'both']);
  expect(b.exitCode, b.stderr).toBe(0);
  snapshotOfB = String(snapshotEvent(b.events)?.id);
});
afterAll(async () => {
  await dropCustomerDatabases(B);
  await destroyTestEnv(t);
});

describe('customer-index', () => {
  it.each([
    ['customer id with a command', ['1;id', 'abcdef1234', 'manual']],
    ['a snapshot id with a space', [String(A), 'abcdef12 34', 'manual']],
    ['an uppercase snapshot id', [String(A), 'ABCDEF1234', 'manual']],
    ['unknown source', [String(A), 'abcdef1234', 'weekly']],
    ['an extra option', [String(A), 'abcdef1234', 'manual', '--paths', 'x']],
    ['a bad job id', [String(A), 'abcdef1234', 'manual', '--job', '../1']],
  ])('refuses %s with exit 2 and nothing listed', async (_n, args) => {
    const r = await run(t, 'customer-index', args);
    expect(r.exitCode).toBe(2);
    expect(errorCode(r.events)).toBe('INVALID_ARGUMENT');
    expect(r.events).toHaveLength(1);
    expect(await readdir(path.join(t.dataDir, 'work', 'tmp')).catch(() => [])).toEqual([]);
  });

  it("lists nothing of another customer's snapshot", async () => {
    const r = await run(t, 'customer-index', [String(A), snapshotOfB, 'manual']);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
    expect(r.stdout).not.toContain('"struct_type":"node"');
    expect(r.events.filter((e) => e.type === 'index' || e.type === 'table')).toEqual([]);
  });

  it("lists its own snapshot's files relative to the content folder and the dump's tables by their names", async () => {
    const r = await run(t, 'customer-index', [String(B), snapshotOfB.slice(0, 8), 'manual']);
    expect(r.exitCode, r.stderr).toBe(0);
    const index = r.events.find((e) => e.type === 'index');
    const entries = listedEntries(r.stdout);
    expect(index).toMatchObject({ content: 'wordpress', dump: true, entries: entries.length });
    expect(String(index?.root)).toMatch(new RegExp(`/customer-${B}/wordpress$`));
    expect(entries.map((e) => e.path)).toContain('wp-content-4/plugins-5/file-6.php');
    expect(entries.find((e) => e.path === 'image.bin')).toMatchObject({
      type: 'file',
      size: 65_536,
    });
    // listedEntries refuses any listed line that is not below the root (the site around the
    // content folder, the dump): only the content folder's nodes are passed to the worker.
    expect(entries.every((e) => !e.path.startsWith('/'))).toBe(true);
    const tables = r.events.filter((e) => e.type === 'table');
    expect(tables.map((e) => e.name).sort()).toEqual([
      'audit',
      'media',
      'odd`name ü',
      'options',
      'posts',
    ]);
    expect(tables.find((e) => e.name === 'odd`name ü')?.size).toBeGreaterThan(0);
    expect(tables.find((e) => e.name === 'audit')?.size).toBe(0);
    expect(r.events.at(-1)).toEqual({ type: 'completed' });
    // One writer at a time: every line whole, and the listing's restic event only after its
    // last line (the script reads the listing while the follower still passes it on).
    const lines = r.stdout.split('\n').filter(Boolean);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    const resticLs = lines.indexOf('{"type":"restic","command":"ls","code":0}');
    expect(resticLs).toBeGreaterThan(
      lines.findLastIndex((l) => l.includes('"struct_type":"node"')),
    );
    expect(resticLs).toBeLessThan(lines.indexOf('{"type":"listing_end"}'));
  });
});
