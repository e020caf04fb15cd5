import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
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
  listSnapshots,
  randomCustomerId,
  run,
  siteAccount,
  siteManifest,
  snapshotEvent,
  sql,
  start,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
let site: string;

beforeAll(async () => {
  t = await createTestEnv();
  site = await buildSite(t.customersRoot, A);
  await createCustomerDatabase(A);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

describe('undo points', () => {
  for (const scope of ['files', 'db', 'both'] as const) {
    it(`restoring the undo point of a ${scope} restore puts back exactly the state from before it`, async () => {
      const backup = await run(t, 'customer-backup', [String(A), 'both']);
      expect(backup.exitCode, backup.stderr).toBe(0);
      const backupId = snapshotEvent(backup.events)?.id ?? '';

      // the customer changes the site after the backup
      await writeFile(path.join(site, 'wordpress', `after-${scope}.txt`), 'made after the backup');
      await rm(path.join(site, 'wordpress', 'Grüße über.txt'), { force: true });
      await sql(`UPDATE customer_${A}.posts SET title = 'after ${scope}' WHERE id = 1;
        CREATE TABLE IF NOT EXISTS customer_${A}.after_backup (x INT);
        CREATE DEFINER = ${siteAccount(A)} PROCEDURE IF NOT EXISTS customer_${A}.after_backup_proc() SELECT 1;
        CREATE OR REPLACE DEFINER = ${siteAccount(A)} VIEW customer_${A}.after_backup_view AS SELECT x FROM customer_${A}.after_backup`);
      const changedFiles = await siteManifest(site);
      const changedDb = await dbManifest(A);

      const restore = await run(t, 'customer-restore', [String(A), backupId, scope, 'manual']);
      expect(restore.exitCode, restore.stderr).toBe(0);
      const undo = snapshotEvent(restore.events, 'safety');
      expect(undo?.id).toMatch(/^[0-9a-f]{64}$/);

      const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', scope, 'safety']);
      expect(back.exitCode, back.stderr).toBe(0);
      if (scope !== 'db') expect(await siteManifest(site)).toEqual(changedFiles);
      if (scope !== 'files') expect(await dbManifest(A)).toEqual(changedDb);
    });
  }
});

// The undo point is stored after the switch-over, from what the swap moved aside: the job
// is done before it, so it must survive a kill or a broken repository until it is stored.
describe('the undo point after the switch-over', () => {
  // `restic backup` waits (SLOW_BACKUP seconds) or fails as if the repository were gone
  // (BACKUP_FAILS names a file whose existence means: fail); everything else is restic.
  let wrapper: string;
  beforeAll(async () => {
    wrapper = path.join(t.dataDir, 'restic-wrapper');
    await writeFile(
      wrapper,
      '#!/bin/bash\nfor a in "$@"; do if [ "$a" = backup ]; then\n  if [ -n "$BACKUP_FAILS" ] && [ -e "$BACKUP_FAILS" ]; then echo "Fatal: unable to open config file: gone" >&2; exit 10; fi\n  if [ -n "$SLOW_BACKUP" ]; then : > "$SLOW_BACKUP_MARK"; sleep "$SLOW_BACKUP"; fi\n  break; fi; done\nexec restic "$@"\n',
    );
    await chmod(wrapper, 0o755);
  });

  const prepare = async (tag: string) => {
    const backup = await run(t, 'customer-backup', [String(A), 'both']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    await writeFile(path.join(site, 'wordpress', `before-${tag}.txt`), `live before ${tag}`);
    await sql(`UPDATE customer_${A}.posts SET title = 'live ${tag}' WHERE id = 1`);
    return {
      backupId: snapshotEvent(backup.events)?.id ?? '',
      files: await siteManifest(site),
      db: await dbManifest(A),
    };
  };
  /** After the restore reported `completed`: SIGKILL its process group once `mark` exists. */
  const killWhenMarked = async (s: ReturnType<typeof start>, mark: string) => {
    expect(await s.waitFor((e) => e.type === 'completed')).toBe(true);
    const until = Date.now() + 60_000;
    while (!(await exists(mark)) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(await exists(mark)).toBe(true);
    if (s.proc.pid) process.kill(-s.proc.pid, 'SIGKILL');
    await s.proc;
    await rm(mark, { force: true });
  };
  const undoIds = async () =>
    new Set(
      (await listSnapshots(t, 'safety'))
        .filter((s) => (s.tags as string[]).includes(`customer-${A}`))
        .map((s) => s.id as string),
    );

  it('killed while the undo point is stored: the site is restored; --recover stores the undo point, which gives back the old site', async () => {
    const before = await prepare('kill');
    const undoBefore = await undoIds();
    const mark = path.join(t.dataDir, 'in-backup');
    const s = start(t, 'customer-restore', [String(A), before.backupId, 'both', 'manual'], {
      BACKUPS_RESTIC_BIN: wrapper,
      SLOW_BACKUP: '30',
      SLOW_BACKUP_MARK: mark,
    });
    await killWhenMarked(s, mark);
    // switched over: the backup's content is live; what it replaced waits in the undo folder
    expect(await siteManifest(site)).not.toEqual(before.files);
    const undoFolder = path.join(t.customersRoot, '.restore', `customer-${A}`, 'undo');
    expect(
      await exists(path.join(undoFolder, `customer-${A}`, 'wordpress', 'before-kill.txt')),
    ).toBe(true);
    expect(await exists(path.join(undoFolder, `customer_${A}.sql`))).toBe(true);

    const rec = await run(t, 'customer-restore', ['--recover', String(A)]);
    expect(rec.exitCode, rec.stderr).toBe(0);
    expect(rec.events.find((e) => e.type === 'recovered')?.action).toBe('completed');
    const undo = snapshotEvent(rec.events, 'safety');
    expect(undo?.id).toMatch(/^[0-9a-f]{64}$/);
    expect(undoBefore.has(undo?.id ?? '')).toBe(false);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);

    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'both', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await siteManifest(site)).toEqual(before.files);
    expect(await dbManifest(A)).toEqual(before.db);
  });

  it('killed after the undo point was uploaded but before the journal recorded it: --recover stores no second copy', async () => {
    const before = await prepare('uploaded');
    const job = String(900_000 + Math.floor(Math.random() * 99_999));
    const jobSnapshots = async () =>
      (await listSnapshots(t, 'safety')).filter((s) => s.tags.includes(`job-${job}`));
    // `restic backup` runs to the end, then the script is killed before it writes UNDO=stored
    const afterUpload = path.join(t.dataDir, 'restic-after-upload');
    await writeFile(
      afterUpload,
      '#!/bin/bash\nfor a in "$@"; do if [ "$a" = backup ]; then\n  restic "$@"; rc=$?; : > "$UPLOADED_MARK"; sleep 30; exit $rc\nfi; done\nexec restic "$@"\n',
    );
    await chmod(afterUpload, 0o755);
    const mark = path.join(t.dataDir, 'uploaded');
    const s = start(
      t,
      'customer-restore',
      [String(A), before.backupId, 'both', 'manual', '--job', job],
      { BACKUPS_RESTIC_BIN: afterUpload, UPLOADED_MARK: mark },
    );
    await killWhenMarked(s, mark);
    const restoreDir = path.join(t.customersRoot, '.restore', `customer-${A}`);
    expect(await readFile(path.join(restoreDir, 'journal'), 'utf8')).not.toMatch(/^UNDO=stored$/m);
    const uploaded = await jobSnapshots();
    expect(uploaded).toHaveLength(1);

    const rec = await run(t, 'customer-restore', ['--recover', String(A)]);
    expect(rec.exitCode, rec.stderr).toBe(0);
    expect(rec.events.find((e) => e.type === 'recovered')?.action).toBe('completed');
    // the stored undo point is reported again (the worker records it), not uploaded again
    expect(snapshotEvent(rec.events, 'safety')?.id).toBe(uploaded[0]?.id);
    expect((await jobSnapshots()).map((u) => u.id)).toEqual([uploaded[0]?.id]);
    expect(await exists(restoreDir)).toBe(false);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');

    const back = await run(t, 'customer-restore', [
      String(A),
      uploaded[0]?.id ?? '',
      'both',
      'safety',
    ]);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await siteManifest(site)).toEqual(before.files);
    expect(await dbManifest(A)).toEqual(before.db);
  });

  it('the safety repository fails after the switch-over: the restore is done, the undo folder is kept, and --recover stores it once the repository is back', async () => {
    const before = await prepare('broken');
    const broken = path.join(t.dataDir, 'safety-broken');
    await writeFile(broken, '');
    const r = await run(t, 'customer-restore', [String(A), before.backupId, 'both', 'manual'], {
      BACKUPS_RESTIC_BIN: wrapper,
      BACKUP_FAILS: broken,
    });
    // the job was done (site switched over and open) before the failure
    expect(r.events.some((e) => e.type === 'completed')).toBe(true);
    expect(r.exitCode).toBe(5);
    expect(errorCode(r.events)).toBe('REPOSITORY_UNAVAILABLE');
    expect(await exists(path.join(site, '.maintenance'))).toBe(false);
    expect(await siteManifest(site)).not.toEqual(before.files);
    const undoFolder = path.join(t.customersRoot, '.restore', `customer-${A}`, 'undo');
    expect(
      await exists(path.join(undoFolder, `customer-${A}`, 'wordpress', 'before-broken.txt')),
    ).toBe(true);

    // still broken: --recover fails and deletes nothing
    const failed = await run(t, 'customer-restore', ['--recover', String(A)], {
      BACKUPS_RESTIC_BIN: wrapper,
      BACKUP_FAILS: broken,
    });
    expect(failed.exitCode).toBe(5);
    expect(await exists(path.join(undoFolder, `customer_${A}.sql`))).toBe(true);

    await rm(broken);
    const rec = await run(t, 'customer-restore', ['--recover', String(A)], {
      BACKUPS_RESTIC_BIN: wrapper,
      BACKUP_FAILS: broken,
    });
    expect(rec.exitCode, rec.stderr).toBe(0);
    const undo = snapshotEvent(rec.events, 'safety');
    expect(undo?.tags).toEqual(expect.arrayContaining([`customer-${A}`, 'safety', 'both']));
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');

    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'both', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await siteManifest(site)).toEqual(before.files);
    expect(await dbManifest(A)).toEqual(before.db);
  });
});
