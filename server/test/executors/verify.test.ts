import { chmod, mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
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
  parseAllEvents,
  phases,
  randomCustomerId,
  readLog,
  run,
  siteManifest,
  snapshotEvent,
  sql,
  start,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
let siteA: string;
let slowRestic: string;

beforeAll(async () => {
  t = await createTestEnv();
  siteA = await buildSite(t.customersRoot, A);
  await createCustomerDatabase(A);
  // Holds `restic restore` so a signal can land while the drill downloads.
  slowRestic = path.join(t.dataDir, 'slow-restic');
  await writeFile(
    slowRestic,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell script, not a template
    '#!/bin/bash\nif [ -n "$SLOW_RESTORE_MATCH" ] && [[ "$*" != *"$SLOW_RESTORE_MATCH"* ]]; then exec restic "$@"; fi\nfor a in "$@"; do if [ "$a" = restore ]; then trap \'pkill -TERM -P $$; exit 143\' TERM; sleep "${SLOW_RESTORE:-0}" >/dev/null 2>&1 & wait $!; trap - TERM; break; fi; done\nexec restic "$@"\n',
  );
  await chmod(slowRestic, 0o755);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

const live = async () => ({ files: await siteManifest(siteA), db: await dbManifest(A) });
const sandbox = () => path.join(t.customersRoot, '.verify', `customer-${A}`);
const leftovers = async () => ({
  sandbox: await exists(sandbox()),
  scratch: await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_verify'`),
  account: await sql(`SELECT User FROM mysql.global_priv WHERE User = 'backups_verify_${A}'`),
});
const clean = { sandbox: false, scratch: '', account: '' };
const result = (events: Event[]) => events.find((e) => e.type === 'verification');

/** A restic of the test's own: `body` (bash, the arguments in "$@") first, then the real one. */
async function wrapRestic(name: string, body: string): Promise<string> {
  const file = path.join(t.dataDir, name);
  await writeFile(file, `#!/bin/bash\n${body}\nexec restic "$@"\n`);
  await chmod(file, 0o755);
  return file;
}

/** A repository of its own, with one backup of the site in it, for tests that damage it. */
async function ownRepository(name: string) {
  const env = {
    BACKUPS_MANUAL_REPOSITORY: path.join(t.dataDir, 'repos', name),
    BACKUPS_MANUAL_PASSWORD_FILE: path.join(t.dataDir, 'secrets', `${name}.pass`),
  };
  expect((await run(t, 'backup-repository', ['manual', 'init'], env)).exitCode).toBe(0);
  const made = await run(t, 'customer-backup', [String(A), 'both'], env);
  const snap = snapshotEvent(made.events);
  expect(snap, made.stderr).toBeDefined();
  const data = path.join(t.dataDir, 'repos', name, 'data');
  const packs: string[] = [];
  for (const sub of await readdir(data)) {
    for (const f of await readdir(path.join(data, sub))) packs.push(path.join(data, sub, f));
  }
  return { env, id: String(snap?.id), packs };
}

describe('customer-verify: a restore drill beside the live site', () => {
  it('a good snapshot is VERIFIED with files, bytes, tables and a restore time; the live site is untouched', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    // the site moves on after its backup: the drill must neither see nor touch that
    await writeFile(path.join(siteA, 'wordpress', 'after-backup.txt'), 'live only');
    await sql(`INSERT INTO customer_${A}.options VALUES ('after', 'backup')`);
    const before = await live();
    const logBefore = await readLog(t, A);
    const r = await run(t, 'customer-verify', [String(A), String(snap?.id), 'manual']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(phases(r.events)).toEqual([
      'VERIFYING',
      'CHECKING_SPACE',
      'DOWNLOADING',
      'CHECKING_FILES',
      'IMPORTING_DATABASE',
      'CHECKING_DATABASE',
      'CLEANING_UP',
    ]);
    // buildSite: 5 x 6 x 7 php files, image.bin, the non-ASCII file, wp-config.php
    expect(result(r.events)).toMatchObject({
      status: 'verified',
      snapshot: snap?.id,
      files: 213,
      tables: 4,
    });
    const v = result(r.events) as unknown as { bytes: number; restoreSeconds: number };
    expect(v.bytes).toBeGreaterThan(65_536);
    expect(v.restoreSeconds).toBeGreaterThan(0);
    expect(r.events.some((e) => e.type === 'maintenance' || e.type === 'error')).toBe(false);
    expect(await live()).toEqual(before);
    expect(await readLog(t, A)).toEqual(logBefore);
    expect(await leftovers()).toEqual(clean);
  });

  it('a snapshot whose pack file was deleted FAILS, saying its data is missing', async () => {
    const repo = await ownRepository('verify-deleted');
    for (const p of repo.packs) await rm(p);
    const before = await live();
    const r = await run(t, 'customer-verify', [String(A), repo.id, 'manual'], repo.env);
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('VERIFICATION_FAILED');
    expect(result(r.events)).toMatchObject({
      status: 'failed',
      problem: expect.stringMatching(/missing from the backup storage: \d+ of its files/),
    });
    expect(await live()).toEqual(before);
    expect(await leftovers()).toEqual(clean);
  });

  it('a snapshot whose pack file was corrupted FAILS, saying its data is damaged', async () => {
    const repo = await ownRepository('verify-corrupted');
    for (const p of repo.packs) {
      await chmod(p, 0o600);
      const bytes = await readFile(p);
      // flip bytes inside the first blob of each pack (past restic's header)
      for (let i = 40; i < Math.min(bytes.length, 200); i++) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
      await writeFile(p, bytes);
    }
    const r = await run(t, 'customer-verify', [String(A), repo.id, 'manual'], repo.env);
    expect(r.exitCode).toBe(1);
    expect(result(r.events)).toMatchObject({
      status: 'failed',
      problem: expect.stringMatching(/damaged in the backup storage/),
    });
    expect(await leftovers()).toEqual(clean);
  });

  /** A database-only snapshot of customer A whose dump is `edit` of a real one. */
  async function dumpSnapshot(edit: (dump: string) => Promise<void>) {
    const dumpDir = path.join(t.dataDir, 'work', 'dumps', `customer-${A}`);
    await mkdir(dumpDir, { recursive: true });
    const dump = path.join(dumpDir, `customer_${A}.sql`);
    await writeFile(dump, (await execa('mysqldump', ['-uroot', `customer_${A}`])).stdout);
    await edit(dump);
    const made = await execa(
      'restic',
      ['backup', '--json', '--tag', `customer-${A},manual,db`, dumpDir],
      {
        env: {
          RESTIC_REPOSITORY: path.join(t.dataDir, 'repos', 'manual'),
          RESTIC_PASSWORD_FILE: path.join(t.dataDir, 'secrets', 'manual-repository.pass'),
          RESTIC_CACHE_DIR: path.join(t.dataDir, 'cache', 'restic'),
        },
      },
    );
    await rm(dumpDir, { recursive: true });
    return made.stdout
      .split('\n')
      .map((l) => JSON.parse(l) as { message_type: string; snapshot_id?: string })
      .find((l) => l.message_type === 'summary')?.snapshot_id as string;
  }

  it('a dump the server refuses (a statement that is not SQL, the dump otherwise whole) FAILS, quoting the error', async () => {
    const id = await dumpSnapshot(async (dump) => {
      const text = await readFile(dump, 'utf8');
      await writeFile(dump, text.replace(/^(CREATE TABLE)/m, 'THIS IS NOT SQL;\n$1'));
    });
    const r = await run(t, 'customer-verify', [String(A), id, 'manual']);
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('VERIFICATION_FAILED');
    expect(result(r.events)).toMatchObject({
      status: 'failed',
      problem: expect.stringMatching(/^The database dump could not be imported: ERROR 1064/),
    });
    expect(await leftovers()).toEqual(clean);
  });

  // A drill cut short on this server says nothing about the backup: no verdict (the worker
  // records none, alerts nobody, e-mails nobody). The chaos soak's kill-restic and
  // kill-mariadb-client faults made both of these "failed" verdicts on good backups.
  it('restic killed by a signal while the drill downloads: no verdict, VERIFY_FAILED, nothing left', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    const killedRestic = await wrapRestic(
      'killed-restic',
      'for a in "$@"; do if [ "$a" = restore ]; then restic "$@" & sleep 0.3; kill -KILL $!; kill -KILL $$; fi; done',
    );
    const r = await run(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      BACKUPS_RESTIC_BIN: killedRestic,
    });
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('VERIFY_FAILED');
    expect(result(r.events)).toBeUndefined();
    expect(await leftovers()).toEqual(clean);
  });

  it('the import killed by a signal: no verdict, VERIFY_FAILED, nothing left', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    const bin = path.join(t.dataDir, 'killed-import-bin');
    await mkdir(bin, { recursive: true });
    const real = (await execa('bash', ['-c', 'command -v mariadb'])).stdout.trim();
    await writeFile(
      path.join(bin, 'mariadb'),
      `#!/bin/bash\nif [[ " $* " == *" --binary-mode "* ]]; then head -c 2000 >/dev/null; kill -KILL $$; fi\nexec ${real} "$@"\n`,
    );
    await chmod(path.join(bin, 'mariadb'), 0o755);
    const r = await run(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('VERIFY_FAILED');
    expect(result(r.events)).toBeUndefined();
    expect(await leftovers()).toEqual(clean);
  });

  it('a dump cut short FAILS: "the database dump is incomplete", and nothing is imported', async () => {
    const id = await dumpSnapshot((dump) => truncate(dump, 1500));
    const r = await run(t, 'customer-verify', [String(A), id, 'manual']);
    expect(r.exitCode).toBe(1);
    expect(result(r.events)).toMatchObject({
      status: 'failed',
      problem: expect.stringMatching(/^The database dump is incomplete/),
      tables: 0,
    });
    expect(phases(r.events)).not.toContain('CHECKING_DATABASE');
    expect(await leftovers()).toEqual(clean);
  });

  it('SIGTERM while downloading: exit 6, INTERRUPTED, no verdict, nothing left', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    const s = start(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      BACKUPS_RESTIC_BIN: slowRestic,
      SLOW_RESTORE: '20',
    });
    expect(await s.waitFor((e) => e.phase === 'DOWNLOADING')).toBe(true);
    expect(await exists(sandbox())).toBe(true);
    if (s.proc.pid) process.kill(s.proc.pid, 'SIGTERM');
    const r = await s.proc;
    expect(r.exitCode).toBe(6);
    expect(errorCode(s.events)).toBe('INTERRUPTED');
    expect(result(s.events)).toBeUndefined();
    expect(await leftovers()).toEqual(clean);
  });

  it('SIGKILL mid-drill, then --recover-all: the sandbox, scratch database and account are gone', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    // a drill killed during its import leaves all three behind
    await sql(`CREATE DATABASE customer_${A}__verify`);
    await sql(`CREATE USER 'backups_verify_${A}'@'localhost' IDENTIFIED BY 'x'`);
    const s = start(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      BACKUPS_RESTIC_BIN: slowRestic,
      SLOW_RESTORE: '20',
    });
    expect(await s.waitFor((e) => e.phase === 'DOWNLOADING')).toBe(true);
    // the drill removes what an earlier one left before it starts: made again here
    await sql(`CREATE DATABASE IF NOT EXISTS customer_${A}__verify`);
    await sql(`CREATE USER IF NOT EXISTS 'backups_verify_${A}'@'localhost' IDENTIFIED BY 'x'`);
    if (s.proc.pid) process.kill(-s.proc.pid, 'SIGKILL');
    await s.proc;
    expect((await leftovers()).sandbox).toBe(true);
    const r = await run(t, 'customer-verify', ['--recover-all']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.events).toEqual([{ type: 'recovered', action: 'removed' }]);
    expect(await leftovers()).toEqual(clean);
    expect(await readdir(t.customersRoot)).not.toContain('.verify');
  });

  it("the dump is imported into the drill's own database server (user mysql, nice 19), never the live one; a drill killed with that server left running: --recover-all stops it and removes its folder", async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    const dbHome = path.join(t.customersRoot, '.verify', `customer-${A}.db`);
    const servers = async () =>
      (await execa('pgrep', ['-f', '--', `--datadir=${dbHome}/data`], { reject: false })).stdout
        .split('\n')
        .filter(Boolean)
        .map(Number);
    // the files' download held for 20 s: the dump is in and imported meanwhile
    const s = start(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      BACKUPS_RESTIC_BIN: slowRestic,
      SLOW_RESTORE: '20',
      SLOW_RESTORE_MATCH: 'wordpress',
    });
    let stderr = '';
    s.proc.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const own = (statement: string) =>
      execa('mariadb', [
        '--no-defaults',
        `--socket=${dbHome}/s.sock`,
        '-uroot',
        '-N',
        '-B',
        '-e',
        statement,
      ]).then((r) => r.stdout.trim());
    // the backup's four tables and their rows (the site has not changed since) come in there
    const rows = await sql(`SELECT COUNT(*) FROM customer_${A}.options`);
    const until = Date.now() + 30_000;
    let imported = '';
    while (Date.now() < until) {
      imported = await own(
        `SELECT CONCAT((SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'customer_${A}__verify' AND TABLE_TYPE = 'BASE TABLE'), ' ', (SELECT COUNT(*) FROM customer_${A}__verify.options))`,
      ).catch(() => '');
      if (imported === `4 ${rows}`) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(imported, stderr).toBe(`4 ${rows}`);
    // the live server has no scratch database and no account
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_verify'`)).toBe('');
    expect(
      await sql(`SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'backups_verify_${A}'`),
    ).toBe('0');
    const [server] = await servers();
    expect(server).toBeGreaterThan(0);
    const ps = await execa('ps', ['-o', 'user=,ni=', '-p', String(server)]);
    expect(ps.stdout.trim().split(/\s+/)).toEqual(['mysql', '19']);

    // the drill dies (every process of it but its server: an OOM kill of the script)
    const group = (await execa('pgrep', ['-g', String(s.proc.pid)], { reject: false })).stdout
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== server);
    for (const pid of group) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await s.proc;
    expect(await servers()).toEqual([server]);
    const r = await run(t, 'customer-verify', ['--recover-all']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.events).toEqual([{ type: 'recovered', action: 'removed' }]);
    expect(await servers()).toEqual([]);
    expect(await leftovers()).toEqual(clean);
    expect(await readdir(t.customersRoot)).not.toContain('.verify');
  }, 90_000);

  it("--recover-all leaves alone another node's drill on the same database server: its scratch database and account stay", async () => {
    // a customer whose site is on another node (not under this node's sites), drilling now
    const other = A + 7;
    await sql(`CREATE DATABASE customer_${other}__verify`);
    await sql(`CREATE TABLE customer_${other}__verify.t (id int)`);
    await sql(`CREATE USER 'backups_verify_${other}'@'localhost' IDENTIFIED BY 'x'`);
    try {
      const r = await run(t, 'customer-verify', ['--recover-all']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.events).toEqual([]);
      expect(await sql(`SHOW TABLES FROM customer_${other}__verify`)).toBe('t');
      expect(
        await sql(`SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'backups_verify_${other}'`),
      ).toBe('1');
    } finally {
      await sql(`DROP DATABASE IF EXISTS customer_${other}__verify`);
      await sql(`DROP USER IF EXISTS 'backups_verify_${other}'@'localhost'`);
    }
  });

  it('a snapshot too big for the disk is refused before anything is restored, on its listing', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    const df = await execa('df', ['-B1M', '--output=avail', t.customersRoot]);
    const availMb = Number(df.stdout.trim().split('\n').at(-1));
    const r = await run(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      BACKUPS_SPACE_MARGIN_MB: String(availMb + 1024),
    });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('INSUFFICIENT_SPACE');
    expect(result(r.events)).toBeUndefined();
    // the summary's bound did not fit, so the listing decided; nothing was restored
    const restic = parseAllEvents(r.stdout)
      .filter((e) => e.type === 'restic')
      .map((e) => e.command);
    expect(restic).toContain('ls');
    expect(restic).not.toContain('restore');
    expect(phases(r.events)).not.toContain('DOWNLOADING');
    expect(await exists(path.join(t.customersRoot, '.verify'))).toBe(false);
    expect(await leftovers()).toEqual(clean);
  });

  it('a listing that fails while the dump comes down fails the drill, without a verdict, and leaves nothing', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    // the listing gives the snapshot's own line, then fails 1 s later; the restore is held
    // 2 s, so the failure lands during it
    const brokenList = await wrapRestic(
      'broken-ls-restic',
      'for a in "$@"; do\n  if [ "$a" = ls ]; then restic "$@" | head -n 1; sleep 1; echo "Fatal: the listing broke" >&2; exit 1; fi\n  if [ "$a" = restore ]; then sleep 2; break; fi\ndone',
    );
    const r = await run(t, 'customer-verify', [String(A), String(snap?.id), 'manual'], {
      BACKUPS_RESTIC_BIN: brokenList,
    });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.events.find((e) => e.type === 'error')).toMatchObject({
      code: 'VERIFY_FAILED',
      message: 'The backup could not be read.',
    });
    expect(result(r.events)).toBeUndefined();
    expect(phases(r.events)).toContain('DOWNLOADING');
    expect(phases(r.events)).not.toContain('CHECKING_FILES');
    const restic = parseAllEvents(r.stdout).filter((e) => e.type === 'restic');
    expect(restic).toContainEqual({ type: 'restic', command: 'ls', code: 1 });
    expect(restic.map((e) => e.command)).toContain('restore');
    expect(await exists(path.join(t.customersRoot, '.verify'))).toBe(false);
    expect(await leftovers()).toEqual(clean);
  });

  it('a daily snapshot is VERIFIED too (its own line from restic snapshots, its listing beside the download)', async () => {
    const made = await run(t, 'customer-backup', [String(A), 'both', '--source', 'daily']);
    const snap = snapshotEvent(made.events);
    expect(snap, made.stderr).toBeDefined();
    const r = await run(t, 'customer-verify', [String(A), String(snap?.id).slice(0, 8), 'daily']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(result(r.events)).toMatchObject({
      status: 'verified',
      snapshot: snap?.id,
      tables: 4,
    });
    // the site as it was backed up (earlier tests added files to it)
    expect(Number(result(r.events)?.files)).toBeGreaterThanOrEqual(213);
    const restic = parseAllEvents(r.stdout)
      .filter((e) => e.type === 'restic')
      .map((e) => e.command);
    expect(restic.sort()).toEqual(['ls', 'restore', 'restore', 'snapshots']);
    expect(await leftovers()).toEqual(clean);
  });

  it('a snapshot id that names no snapshot is refused: SNAPSHOT_NOT_FOUND, nothing made', async () => {
    for (const kind of ['manual', 'daily']) {
      const r = await run(t, 'customer-verify', [String(A), 'abcdef12', kind]);
      expect(r.exitCode, `${kind}: ${r.stderr}`).toBe(3);
      expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_FOUND');
      expect(await exists(path.join(t.customersRoot, '.verify'))).toBe(false);
    }
  });

  it('refuses bad arguments with exit 2 and no side effect', async () => {
    for (const args of [
      [],
      ['0', 'abcdef12', 'manual'],
      ['1;id', 'abcdef12', 'manual'],
      [String(A), 'ABCDEF12', 'manual'],
      [String(A), 'abcdef12', 'weekly'],
      [String(A), 'abcdef12', 'manual', '--job', '$(id)'],
      ['--recover', '../1'],
      ['--recover-all', 'x'],
    ]) {
      const r = await run(t, 'customer-verify', args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(errorCode(r.events)).toBe('INVALID_ARGUMENT');
    }
    expect(await leftovers()).toEqual(clean);
  });

  it("another customer's snapshot is refused, not drilled", async () => {
    const B = randomCustomerId();
    await buildSite(t.customersRoot, B);
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'files'])).events);
    const r = await run(t, 'customer-verify', [String(B), String(snap?.id), 'manual']);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
    expect(result(r.events)).toBeUndefined();
    expect(await exists(path.join(t.customersRoot, '.verify'))).toBe(false);
  });
});
