// scripts/lib/restored-check.mjs: a drill's comparison of what its restore wrote with the
// snapshot's listing. Each problem a drill must name, on made-up listings and find records.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/config/paths.js';

const SCRIPT = path.join(projectRoot, 'scripts', 'lib', 'restored-check.mjs');
const C = '/sites/customer-7/wordpress';
const D = '/dumps/customer_7.sql';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'restored-check-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Node = Record<string, unknown>;
const node = (p: string, type: string, extra: Node = {}): Node => ({
  struct_type: 'node',
  path: p,
  type,
  uid: 33,
  gid: 33,
  ...extra,
});
/** A find record: relative path, type letter, size, octal mode, uid, gid. */
const found = (p: string, t: string, size: number, mode: string, uid = 33, gid = 33) =>
  [p.slice(1), t, String(size), mode, String(uid), String(gid)].join('\0');

async function check(listing: (Node | string)[], records: string[], dump = D) {
  const ls = path.join(dir, 'ls.json');
  const f = path.join(dir, 'found');
  await writeFile(
    ls,
    `${listing.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`,
  );
  await writeFile(f, records.length ? `${records.join('\0')}\0` : '');
  return execa('node', [SCRIPT, ls, f, C, dump], { reject: false });
}

describe('restored-check.mjs', () => {
  it('everything back as listed: counts the site files and every byte, the dump among the bytes only', async () => {
    const r = await check(
      [
        { struct_type: 'snapshot', id: 'x' },
        node(C, 'dir', { mode: 2147484141 }),
        node(`${C}/a.php`, 'file', { size: 10, mode: 420 }),
        node(`${C}/link`, 'symlink', { mode: 134218239 }),
        node(D, 'file', { size: 5, mode: 384, uid: 0, gid: 0 }),
        node('/sites/customer-8/wordpress/other.php', 'file', { size: 99, mode: 420 }),
      ],
      [
        found(C, 'd', 4096, '755'),
        found(`${C}/a.php`, 'f', 10, '644'),
        found(`${C}/link`, 'l', 7, '777'),
        found(D, 'f', 5, '600', 0, 0),
      ],
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ files: 1, bytes: 15, wrong: [] });
  });

  it('names each problem, in path order: missing, type, size, mode (not of a symlink), owner', async () => {
    const r = await check(
      [
        node(`${C}/e-owner`, 'file', { size: 1, mode: 420 }),
        node(`${C}/a-missing`, 'file', { size: 1, mode: 420 }),
        node(`${C}/d-mode`, 'dir', { mode: 2147484141 }),
        node(`${C}/b-type`, 'file', { size: 1, mode: 420 }),
        node(`${C}/c-size`, 'file', { size: 2, mode: 420 }),
        node(`${C}/f-link`, 'symlink', { mode: 134218239 }),
        node(`${C}/g-setuid`, 'file', { size: 1, mode: 8389101 }),
      ],
      [
        found(`${C}/e-owner`, 'f', 1, '644', 0, 33),
        found(`${C}/d-mode`, 'd', 4096, '700'),
        found(`${C}/b-type`, 'd', 4096, '644'),
        found(`${C}/c-size`, 'f', 1, '644'),
        found(`${C}/f-link`, 'l', 3, '700'),
        found(`${C}/g-setuid`, 'f', 1, '4755'),
      ],
      '',
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).wrong).toEqual([
      { path: `${C}/a-missing`, problem: 'missing' },
      { path: `${C}/b-type`, problem: 'type' },
      { path: `${C}/c-size`, problem: 'size' },
      { path: `${C}/d-mode`, problem: 'mode' },
      { path: `${C}/e-owner`, problem: 'owner' },
    ]);
  });

  it('a listing line that is not JSON fails the check instead of being skipped', async () => {
    const r = await check([node(`${C}/a.php`, 'file', { size: 1, mode: 420 }), 'oops'], []);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
  });
});
