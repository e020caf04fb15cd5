import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
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
  // Delays `restic restore` so a signal can land while it downloads; SIGTERM
  // during the sleep ends the wrapper like it would end restic.
  slowRestic = path.join(t.dataDir, 'slow-restic');
  await writeFile(
    slowRestic,
    // The trap is set before the sleep starts and stops every child of the wrapper, so a
    // SIGTERM that lands between the fork and the wait leaves no sleep behind.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell script, not a template
    '#!/bin/bash\nfor a in "$@"; do if [ "$a" = restore ]; then trap \'pkill -TERM -P $$; exit 143\' TERM; sleep "${SLOW_RESTORE:-0}" >/dev/null 2>&1 & wait $!; trap - TERM; break; fi; done\nexec restic "$@"\n',
  );
  await chmod(slowRestic, 0o755);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

const state = async () => ({ files: await siteManifest(siteA), db: await dbManifest(A) });

describe('failures leave the site as it was', () => {
  it('a corrupt dump fails with DATABASE_IMPORT_FAILED, live database untouched, no maintenance', async () => {
    // A snapshot with the right tags whose dump is garbage.
    const dumpDir = path.join(t.dataDir, 'work', 'dumps', `customer-${A}`);
    await mkdir(dumpDir, { recursive: true });
    await writeFile(
      path.join(dumpDir, `customer_${A}.sql`),
      'CREATE TABLE x (;\n-- garbage\n-- Dump completed\n',
    );
    await execa('restic', ['backup', '--json', '--tag', `customer-${A},manual,db`, dumpDir], {
      env: {
        RESTIC_REPOSITORY: path.join(t.dataDir, 'repos', 'manual'),
        RESTIC_PASSWORD_FILE: path.join(t.dataDir, 'secrets', 'manual-repository.pass'),
        RESTIC_CACHE_DIR: path.join(t.dataDir, 'cache', 'restic'),
      },
    });
    await rm(dumpDir, { recursive: true });
    const snaps = (await run(t, 'backup-repository', ['manual', 'snapshots'])).events;
    const garbage = snaps.find((s) => (s.tags as string[]).includes('db'))?.id as string;
    const before = await state();
    const logBefore = (await readLog(t, A)).length;
    const r = await run(t, 'customer-restore', [String(A), garbage, 'db', 'manual']);
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('DATABASE_IMPORT_FAILED');
    expect(r.events.some((e) => e.type === 'maintenance')).toBe(false);
    expect(await state()).toEqual(before);
    expect((await readLog(t, A)).slice(logBefore)).toEqual([]);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
  });

  it('a restic failure while downloading (pack files deleted) leaves the site as it was', async () => {
    const env = {
      BACKUPS_MANUAL_REPOSITORY: path.join(t.dataDir, 'repos', 'broken'),
      BACKUPS_MANUAL_PASSWORD_FILE: path.join(t.dataDir, 'secrets', 'broken.pass'),
      BACKUPS_SAFETY_REPOSITORY: path.join(t.dataDir, 'repos', 'manual'),
      BACKUPS_SAFETY_PASSWORD_FILE: path.join(t.dataDir, 'secrets', 'manual-repository.pass'),
    };
    await run(t, 'backup-repository', ['manual', 'init'], env);
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'], env)).events);
    const dataDir = path.join(t.dataDir, 'repos', 'broken', 'data');
    for (const sub of await readdir(dataDir))
      await rm(path.join(dataDir, sub), { recursive: true });
    await writeFile(path.join(siteA, 'wordpress', 'after-backup.txt'), 'keep me');
    await sql(`INSERT INTO customer_${A}.options VALUES ('after', 'backup')`);
    const before = await state();
    const r = await run(
      t,
      'customer-restore',
      [String(A), String(snap?.id), 'both', 'manual'],
      env,
    );
    expect(r.exitCode).not.toBe(0);
    expect(errorCode(r.events)).toBe('RESTORE_FAILED');
    expect(await state()).toEqual(before);
    expect(await exists(path.join(siteA, '.maintenance'))).toBe(false);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
  });

  it('SIGTERM while downloading: exit 6, INTERRUPTED, site unchanged', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    await writeFile(path.join(siteA, 'wordpress', 'after-backup-2.txt'), 'keep me');
    const before = await state();
    const s = start(t, 'customer-restore', [String(A), String(snap?.id), 'both', 'manual'], {
      BACKUPS_RESTIC_BIN: slowRestic,
      SLOW_RESTORE: '20',
    });
    expect(await s.waitFor((e) => e.phase === 'DOWNLOADING')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    if (s.proc.pid) process.kill(s.proc.pid, 'SIGTERM');
    const r = await s.proc;
    expect(r.exitCode).toBe(6);
    expect(errorCode(s.events)).toBe('INTERRUPTED');
    expect(s.events.some((e) => e.phase === 'ROLLING_BACK')).toBe(true);
    expect(await state()).toEqual(before);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
  });
});

describe('the steps that run side by side', () => {
  const stray = async (marker: string) =>
    (await execa('pgrep', ['-f', marker], { reject: false })).stdout.trim();

  it('the safety repository cannot be opened while the download runs: the download is stopped, everything rolled back', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    await writeFile(path.join(siteA, 'wordpress', 'after-backup-3.txt'), 'keep me');
    await sql(`INSERT INTO customer_${A}.options VALUES ('after-3', 'backup-3')`);
    const before = await state();
    const t0 = Date.now();
    const r = await run(t, 'customer-restore', [String(A), String(snap?.id), 'both', 'manual'], {
      BACKUPS_RESTIC_BIN: slowRestic,
      SLOW_RESTORE: '37',
      // no undo point could be stored: its repository does not exist
      BACKUPS_SAFETY_REPOSITORY: path.join(t.dataDir, 'repos', 'missing'),
    });
    expect(r.exitCode, r.stderr).toBe(5);
    expect(errorCode(r.events)).toBe('REPOSITORY_UNAVAILABLE');
    // the download (asleep for 37 s in the wrapper) was stopped, not waited for
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(await stray('sleep 37')).toBe('');
    expect(r.events.some((e) => e.phase === 'ROLLING_BACK')).toBe(true);
    expect(r.events.some((e) => e.type === 'maintenance' || e.type === 'completed')).toBe(false);
    expect(await state()).toEqual(before);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
    expect(await exists(path.join(t.dataDir, 'work', 'dumps', `customer-${A}`))).toBe(false);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
  });

  it('SIGTERM while the undo point, the download and the import run: every step stopped, exit 6, site unchanged', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    await writeFile(path.join(siteA, 'wordpress', 'after-backup-4.txt'), 'keep me');
    const before = await state();
    const s = start(t, 'customer-restore', [String(A), String(snap?.id), 'both', 'manual'], {
      BACKUPS_RESTIC_BIN: slowRestic,
      SLOW_RESTORE: '38',
    });
    expect(await s.waitFor((e) => e.phase === 'SAFETY_SNAPSHOT')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    if (s.proc.pid) process.kill(s.proc.pid, 'SIGTERM');
    const r = await s.proc;
    expect(r.exitCode).toBe(6);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(await stray('sleep 38')).toBe('');
    expect(errorCode(s.events)).toBe('INTERRUPTED');
    expect(s.events.some((e) => e.phase === 'ROLLING_BACK')).toBe(true);
    expect(await state()).toEqual(before);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
  });
});

describe('SIGKILL at any point, then --recover', () => {
  const points = [
    'VERIFYING',
    'CHECKING_SPACE',
    'SAFETY_SNAPSHOT',
    'DOWNLOADING',
    // the scratch database is being filled while the files download
    'scratch-database',
    'IMPORTING_DATABASE',
    'SWAPPING',
    'maintenance-on',
    'site-starting',
    // the job is done (site switched over), the undo point is being stored
    'completed',
    // the undo point is stored, the housekeeping goes on
    'undo-point-made',
    'CLEANING_UP',
  ];
  it('leaves the site entirely old or entirely new, never mixed, started, not in maintenance', async () => {
    await rm(path.join(siteA, 'wordpress'), { recursive: true, force: true });
    await buildSite(t.customersRoot, A, 'wordpress', 'old');
    await createCustomerDatabase(A);
    const old = await state();
    const sOld = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    await rm(path.join(siteA, 'wordpress'), { recursive: true, force: true });
    await buildSite(t.customersRoot, A, 'wordpress', 'new-version');
    await sql(
      `INSERT INTO customer_${A}.posts (title) VALUES ('new'); CREATE TABLE customer_${A}.newer (a INT)`,
    );
    const neu = await state();
    const sNew = snapshotEvent((await run(t, 'customer-backup', [String(A), 'both'])).events);
    const outcomes: string[] = [];
    for (const point of points) {
      const current = await state();
      const isNew = JSON.stringify(current) === JSON.stringify(neu);
      const target = isNew ? sOld : sNew;
      const startCmd = `${t.env.BACKUPS_SITE_START_COMMAND}; if [ "${point}" = site-starting ]; then echo starting > ../starting-${A}; sleep 5; fi`;
      const s = start(t, 'customer-restore', [String(A), String(target?.id), 'both', 'manual'], {
        BACKUPS_SITE_START_COMMAND: startCmd,
        KILL_POINT: point,
        BACKUPS_RESTIC_BIN: slowRestic,
        SLOW_RESTORE: '1',
      });
      const marker = path.join(t.customersRoot, `starting-${A}`);
      if (point === 'site-starting') {
        const until = Date.now() + 60_000;
        while (!(await exists(marker)) && Date.now() < until)
          await new Promise((r) => setTimeout(r, 10));
      } else if (point === 'maintenance-on') {
        await s.waitFor((e) => e.type === 'maintenance' && e.on === true);
      } else if (point === 'undo-point-made') {
        await s.waitFor((e) => e.type === 'snapshot' && e.kind === 'safety');
      } else if (point === 'completed') {
        await s.waitFor((e) => e.type === 'completed');
      } else if (point === 'scratch-database') {
        const until = Date.now() + 60_000;
        while (
          !(await sql(
            `SELECT COUNT(*) > 0 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'customer_${A}__restore'`,
          ).then((x) => x === '1')) &&
          Date.now() < until
        )
          await new Promise((r) => setTimeout(r, 5));
      } else {
        await s.waitFor((e) => e.phase === point);
      }
      if (s.proc.pid) process.kill(-s.proc.pid, 'SIGKILL');
      await s.proc;
      await rm(marker, { force: true });
      const logBefore = (await readLog(t, A)).length;
      const rec = await run(t, 'customer-restore', ['--recover', String(A)]);
      expect(rec.exitCode, rec.stderr).toBe(0);
      const action = rec.events.find((e) => e.type === 'recovered')?.action as string;
      const after = await state();
      const same = (x: unknown) => JSON.stringify(after) === JSON.stringify(x);
      expect(same(old) || same(neu), `mixed site after kill at ${point}`).toBe(true);
      expect(await exists(path.join(siteA, '.maintenance'))).toBe(false);
      expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
      expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
      // Nothing else the killed script made is left: its import account, its scratch folder.
      expect(
        await sql(`SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'backups_restore_${A}'`),
      ).toBe('0');
      expect(
        (await readdir(path.join(t.dataDir, 'work', 'tmp'))).filter((d) =>
          d.startsWith(`customer-${A}.`),
        ),
      ).toEqual([]);
      if (action !== 'none') expect((await readLog(t, A)).slice(logBefore)).toContain('start open');
      if (action === 'completed') {
        // switched over before the kill: its undo point was stored, by the restore or by --recover
        const undo = snapshotEvent(s.events, 'safety') ?? snapshotEvent(rec.events, 'safety');
        expect(undo?.id, `no undo point after a kill at ${point}`).toMatch(/^[0-9a-f]{64}$/);
      }
      outcomes.push(`${point}:${action}:${same(neu) ? 'new' : 'old'}`);
      // A second recover has nothing to do.
      const again = await run(t, 'customer-restore', ['--recover', String(A)]);
      expect(again.events).toEqual([{ type: 'recovered', action: 'none' }]);
    }
    console.log(`SIGKILL outcomes: ${outcomes.join(', ')}`);
    // Twelve restores killed and recovered one after another: minutes on a busy 2-core machine.
  }, 360_000);
});
