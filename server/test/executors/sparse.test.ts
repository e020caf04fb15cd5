// Sparse files in a site: a restore writes them with holes (restic restore --sparse), the
// space check counts what the restore writes before it refuses, and a backup refuses a site
// over BACKUPS_SITE_MAX_BYTES before restic reads anything. One backup of a 10 GiB sparse
// file (restic reads all of its zeros: 10-15 s of CPU) serves every case.
import { open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  exists,
  listSnapshots,
  phases,
  randomCustomerId,
  run,
  snapshotEvent,
  type TestEnv,
} from './support/harness.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const SPARSE_SIZE = 10 * GiB;
// A few real bytes in the middle, so the file is not all zeros.
const MARK_OFFSET = 5 * GiB + 12_345;
const MARK = Buffer.from('not a hole: the restore must bring these bytes back');

let t: TestEnv;
const A = randomCustomerId();
let site: string;
let sparseFile: string;
let snapshotId: string;

async function makeSparseFile(file: string): Promise<void> {
  await execa('truncate', ['-s', '10G', file]);
  const fh = await open(file, 'r+');
  try {
    await fh.write(MARK, 0, MARK.length, MARK_OFFSET);
  } finally {
    await fh.close();
  }
}

async function bytesAt(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

const restore = (env: Record<string, string> = {}) =>
  run(t, 'customer-restore', [String(A), snapshotId, 'files', 'manual'], env);

beforeAll(async () => {
  t = await createTestEnv();
  site = await buildSite(t.customersRoot, A);
  await createCustomerDatabase(A);
  sparseFile = path.join(site, 'wordpress', 'disk.img');
  await makeSparseFile(sparseFile);
  const startedAt = Date.now();
  const r = await run(t, 'customer-backup', [String(A), 'files']);
  console.info(`backup of the 10 GiB sparse file: ${(Date.now() - startedAt) / 1000} s`);
  if (r.exitCode !== 0) throw new Error(`backup failed: ${r.stderr}`);
  snapshotId = String(snapshotEvent(r.events)?.id);
}, 300_000);

afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

describe('BACKUPS_SITE_MAX_BYTES', () => {
  it('refuses a site over the limit before restic reads anything: SITE_TOO_LARGE, exit 3, no snapshot', async () => {
    const before = (await listSnapshots(t, 'manual')).map((s) => s.id);
    const r = await run(t, 'customer-backup', [String(A), 'files'], {
      BACKUPS_SITE_MAX_BYTES: String(5 * GiB),
    });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('SITE_TOO_LARGE');
    const error = r.events.find((e) => e.type === 'error');
    expect(error?.message).toMatch(
      /^The site is 10 GiB, over this server's backup limit of 5 GiB; nothing was backed up\.$/,
    );
    expect(phases(r.events)).toEqual(['PREPARING']);
    expect((await listSnapshots(t, 'manual')).map((s) => s.id)).toEqual(before);
  });

  it('counts the database of a database backup, and refuses before the dump', async () => {
    const before = (await listSnapshots(t, 'manual')).length;
    const r = await run(t, 'customer-backup', [String(A), 'db'], { BACKUPS_SITE_MAX_BYTES: '1' });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('SITE_TOO_LARGE');
    expect(phases(r.events)).toEqual(['PREPARING']);
    expect(await exists(path.join(t.dataDir, 'work', 'dumps', `customer-${A}`))).toBe(false);
    expect((await listSnapshots(t, 'manual')).length).toBe(before);
  });

  it('is off at 0, and must be digits', async () => {
    const off = await run(t, 'customer-backup', [String(A), 'db'], { BACKUPS_SITE_MAX_BYTES: '0' });
    expect(off.exitCode, off.stderr).toBe(0);
    const bad = await run(t, 'customer-backup', [String(A), 'db'], {
      BACKUPS_SITE_MAX_BYTES: '100G',
    });
    expect([bad.exitCode, errorCode(bad.events)]).toEqual([2, 'INVALID_ARGUMENT']);
  });
});

describe('a sparse file in a site', () => {
  it('is restored with its holes: same size and bytes, a few blocks on disk', async () => {
    // The customer deleted it; the restore brings it back (and the undo point stays small).
    await rm(sparseFile);
    const r = await restore();
    expect(r.exitCode, r.stderr).toBe(0);
    const st = await stat(sparseFile);
    expect(st.size).toBe(SPARSE_SIZE);
    expect(await bytesAt(sparseFile, MARK_OFFSET, MARK.length)).toEqual(MARK);
    expect(await bytesAt(sparseFile, MARK_OFFSET - 16, 16)).toEqual(Buffer.alloc(16));
    console.info(`allocated after the restore: ${st.blocks * 512} bytes`);
    expect(st.blocks * 512).toBeLessThan(64 * MiB);
  });

  it('passes the space check by what the restore writes when its apparent size does not fit', async () => {
    await rm(sparseFile);
    const df = await execa('df', ['-B1', '--output=avail', t.customersRoot]);
    const free = Number(df.stdout.trim().split('\n').at(-1));
    // Apparent 10 GiB + margin > free, while what the restore writes (a few MiB) + margin < free.
    const marginMb = Math.floor((free - GiB) / MiB);
    const r = await restore({ BACKUPS_SPACE_MARGIN_MB: String(marginMb) });
    expect(r.exitCode, r.stderr).toBe(0);
    const apparent = /Restore needs (\d+) bytes by apparent size .*, (\d+) available/.exec(
      r.stderr,
    );
    const written =
      /Restore needs (\d+) bytes by what it writes \((\d+) .*\), (\d+) available/.exec(r.stderr);
    console.info(`space figures: ${apparent?.[0]} / ${written?.[0]}`);
    expect(apparent, r.stderr).not.toBeNull();
    expect(written, r.stderr).not.toBeNull();
    expect(Number(apparent?.[1])).toBeGreaterThan(Number(apparent?.[2]));
    expect(Number(written?.[1])).toBeLessThanOrEqual(Number(written?.[3]));
    expect(Number(written?.[2])).toBeLessThan(64 * MiB);
    const st = await stat(sparseFile);
    expect(st.size).toBe(SPARSE_SIZE);
    expect(await bytesAt(sparseFile, MARK_OFFSET, MARK.length)).toEqual(MARK);
  });

  it('still refuses when neither figure fits', async () => {
    const r = await restore({ BACKUPS_SPACE_MARGIN_MB: String(1024 * 1024 * 1024) });
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('INSUFFICIENT_SPACE');
    expect(r.stderr).toMatch(/Restore needs \d+ bytes by what it writes/);
    expect(phases(r.events)).toEqual(['VERIFYING', 'CHECKING_SPACE']);
  });
});
