import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
  type Event,
  errorCode,
  exists,
  phases,
  randomCustomerId,
  run,
  script,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
let downloads: string;
let unpackRoot: string;
const A = randomCustomerId();
let snapshot: string;
let backedUp: Map<string, string>;
let backedUpDb: string;

/** Every entry below dir by its path: type, mode and the bytes' hash (what a customer checks). */
async function contents(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(rel: string) {
    for (const name of await readdir(path.join(dir, rel))) {
      const r = path.join(rel, name);
      const st = await lstat(path.join(dir, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r, `d ${mode}`);
        await walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `l ${await readlink(path.join(dir, r))}`);
      else {
        const hash = createHash('sha256')
          .update(await readFile(path.join(dir, r)))
          .digest('hex');
        out.set(r, `f ${mode} ${hash}`);
      }
    }
  }
  await walk('');
  return out;
}

const download = (args: string[]) => run(t, 'customer-download', args);

async function runWithInput(args: string[], input: string) {
  const r = await execa(script('customer-download'), args, {
    env: t.env,
    extendEnv: false,
    reject: false,
    input,
  });
  return {
    exitCode: r.exitCode ?? -1,
    events: r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Event),
    stderr: r.stderr,
  };
}

const archiveEvent = (events: Event[]) =>
  events.find((e) => e.type === 'archive') as
    | (Event & { file: string; name: string; size: number; sha256: string })
    | undefined;

/** The archive event names the file's own size and sha256 (what a customer checks it by). */
async function expectNamesItsFile(events: Event[], file: string): Promise<void> {
  const bytes = await readFile(file);
  const archive = archiveEvent(events);
  expect(archive?.size).toBe(bytes.length);
  expect(archive?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
}

async function unpack(file: string): Promise<string> {
  const dir = await mkdtemp(path.join(unpackRoot, 'x-'));
  if (file.endsWith('.zip')) await execa('unzip', ['-q', file, '-d', dir]);
  else await execa('tar', ['-xzf', file, '-C', dir]);
  return dir;
}

beforeAll(async () => {
  t = await createTestEnv();
  downloads = path.join(t.dataDir, 'downloads');
  t.env.BACKUPS_DOWNLOAD_DIR = downloads;
  unpackRoot = await mkdtemp(path.join(tmpdir(), 'unpack-'));
  const site = await buildSite(t.customersRoot, A, 'wordpress', 'download');
  await createCustomerDatabase(A);
  const b = await run(t, 'customer-backup', [String(A), 'both']);
  expect(b.exitCode).toBe(0);
  snapshot = snapshotEvent(b.events)?.id as string;
  backedUp = await contents(path.join(site, 'wordpress'));
  backedUpDb = await dbManifest(A);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await sql(`DROP DATABASE IF EXISTS customer_${A}_check`);
  await destroyTestEnv(t);
  await rm(unpackRoot, { recursive: true, force: true });
});

describe('customer-download', () => {
  it.each([
    ['zip', 'a.zip'],
    ['tar_gz', 'a.tar.gz'],
  ])(
    'the whole site as %s: every file of the backup, bytes and mode, names relative to the site',
    async (format, out) => {
      const r = await download([
        String(A),
        snapshot,
        'manual',
        'files',
        '--format',
        format,
        '--out',
        out,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(phases(r.events)).toEqual(['VERIFYING', 'CHECKING_SPACE', 'BUILDING']);
      const archive = archiveEvent(r.events);
      expect(archive?.file).toBe(out);
      expect(archive?.name).toMatch(
        new RegExp(
          `^customer_${A}-\\d{4}-\\d{2}-\\d{2}-files\\.${format === 'zip' ? 'zip' : 'tar\\.gz'}$`,
        ),
      );
      const file = path.join(downloads, out);
      const bytes = await readFile(file);
      expect(archive?.size).toBe(bytes.length);
      expect(archive?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(((await lstat(file)).mode & 0o777).toString(8)).toBe('600');
      expect(await contents(await unpack(file))).toEqual(backedUp);
      expect(r.events.at(-1)).toEqual({ type: 'completed' });
    },
  );

  it('one folder: that folder alone, with its path in the site', async () => {
    const r = await runWithInput(
      [
        String(A),
        snapshot,
        'manual',
        'files',
        '--format',
        'zip',
        '--out',
        'folder.zip',
        '--paths-from-stdin',
      ],
      'wp-content-1/plugins-2\0',
    );
    expect(r.exitCode, r.stderr).toBe(0);
    await expectNamesItsFile(r.events, path.join(downloads, 'folder.zip'));
    const got = await contents(await unpack(path.join(downloads, 'folder.zip')));
    const want = new Map(
      [...backedUp].filter(([p]) => p === 'wp-content-1' || p.startsWith('wp-content-1/plugins-2')),
    );
    // The folder's parent is there to hold it (its mode is the backup's too).
    expect(got).toEqual(want);
  });

  it('the database: customer_<id>-<date>.sql.gz that imports into a database identical to the backed-up one', async () => {
    const r = await download([
      String(A),
      snapshot,
      'manual',
      'db',
      '--format',
      'zip',
      '--out',
      'db.sql.gz',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(archiveEvent(r.events)?.name).toMatch(
      new RegExp(`^customer_${A}-\\d{4}-\\d{2}-\\d{2}\\.sql\\.gz$`),
    );
    await expectNamesItsFile(r.events, path.join(downloads, 'db.sql.gz'));
    const dump = await execa('gunzip', ['-c', path.join(downloads, 'db.sql.gz')], {
      encoding: 'buffer',
      stripFinalNewline: false,
    });
    // The dump names no database (the scripts dump one database): it goes wherever it is imported.
    await sql(`DROP DATABASE IF EXISTS customer_${A}_check; CREATE DATABASE customer_${A}_check`);
    await execa('mariadb', ['-uroot', `customer_${A}_check`], { input: dump.stdout });
    const imported = (
      await execa('mysqldump', [
        '-uroot',
        '--compact',
        '--skip-dump-date',
        '--hex-blob',
        '--routines',
        '--triggers',
        '--events',
        '--skip-extended-insert',
        `customer_${A}_check`,
      ])
    ).stdout;
    // The server writes a view's columns qualified by the database it is created in.
    expect(imported.replaceAll(`\`customer_${A}_check\`.`, '')).toBe(backedUpDb);
  });

  it('site and database together: the files and the dump at the archive root', async () => {
    const r = await download([
      String(A),
      snapshot,
      'manual',
      'both',
      '--format',
      'tar_gz',
      '--out',
      'both.tar.gz',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    await expectNamesItsFile(r.events, path.join(downloads, 'both.tar.gz'));
    const got = await contents(await unpack(path.join(downloads, 'both.tar.gz')));
    const sqlName = [...got.keys()].find((k) => k.endsWith('.sql')) as string;
    expect(sqlName).toMatch(new RegExp(`^customer_${A}-\\d{4}-\\d{2}-\\d{2}\\.sql$`));
    got.delete(sqlName);
    expect(got).toEqual(backedUp);
  });

  it('a path not in the backup fails clearly, and nothing is left in the download folder', async () => {
    const before = await readdir(downloads);
    const r = await runWithInput(
      [
        String(A),
        snapshot,
        'manual',
        'files',
        '--format',
        'zip',
        '--out',
        'missing.zip',
        '--paths-from-stdin',
      ],
      'wp-content-1\0no/such/folder\0',
    );
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('PATH_NOT_FOUND');
    expect(r.events.find((e) => e.type === 'error')?.message).toContain('no/such/folder');
    expect(phases(r.events)).not.toContain('BUILDING');
    expect(await readdir(downloads)).toEqual(before);
  });

  it("over what is left of the day's quota: refused before anything is built", async () => {
    const before = await readdir(downloads);
    const r = await download([
      String(A),
      snapshot,
      'manual',
      'files',
      '--format',
      'zip',
      '--out',
      'big.zip',
      '--max-bytes',
      '1000',
    ]);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('QUOTA_EXCEEDED');
    expect(phases(r.events)).not.toContain('BUILDING');
    expect(await readdir(downloads)).toEqual(before);
  });

  it('not enough disk room for the archive: refused before anything is built', async () => {
    const r = await run(
      t,
      'customer-download',
      [String(A), snapshot, 'manual', 'files', '--format', 'zip', '--out', 'room.zip'],
      {
        BACKUPS_SPACE_MARGIN_MB: String(1024 * 1024 * 1024),
      },
    );
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('INSUFFICIENT_SPACE');
    expect(phases(r.events)).not.toContain('BUILDING');
    expect(await exists(path.join(downloads, 'room.zip'))).toBe(false);
  });

  it.each([
    ['..', '../customer-1/wordpress\0'],
    ['an absolute path', '/etc/passwd\0'],
    ['a dot segment', 'wp-content-1/./x\0'],
    ['a newline', 'a\nb\0'],
    ['a path over 4096 bytes', `${'a'.repeat(4097)}\0`],
    ['more than 1000 paths', 'a\0'.repeat(1001)],
  ])('refuses %s with exit 2 before reading the repository', async (_what, input) => {
    const r = await runWithInput(
      [
        String(A),
        snapshot,
        'manual',
        'files',
        '--format',
        'zip',
        '--out',
        'bad.zip',
        '--paths-from-stdin',
      ],
      input,
    );
    expect(r.exitCode).toBe(2);
    expect(errorCode(r.events)).toBe('INVALID_ARGUMENT');
    expect(phases(r.events)).toEqual([]);
  });

  it.each([
    ['an archive name with a slash', ['--format', 'zip', '--out', '../x.zip']],
    ['an unknown format', ['--format', 'rar', '--out', 'x.rar']],
  ])('refuses %s with exit 2', async (_what, extra) => {
    const r = await download([String(A), snapshot, 'manual', 'files', ...extra]);
    expect(r.exitCode).toBe(2);
  });

  it("another customer's snapshot is refused", async () => {
    const r = await download([
      String(A + 1),
      snapshot,
      'manual',
      'files',
      '--format',
      'zip',
      '--out',
      'other.zip',
    ]);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
    expect(await exists(path.join(downloads, 'other.zip'))).toBe(false);
  });
});
