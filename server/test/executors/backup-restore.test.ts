import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
  phases,
  randomCustomerId,
  readLog,
  run,
  siteManifest,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
const B = A + 1;
let siteA: string;

async function mutate(id: number, site: string) {
  await writeFile(
    path.join(site, 'wordpress', 'wp-content-0', 'plugins-0', 'file-0.php'),
    'changed',
  );
  await writeFile(path.join(site, 'wordpress', 'added-later.txt'), 'new');
  await rm(path.join(site, 'wordpress', 'Grüße über.txt'));
  await sql(`UPDATE customer_${id}.posts SET title = 'changed' WHERE id = 1;
    DELETE FROM customer_${id}.options WHERE name = 'theme';
    CREATE TABLE customer_${id}.added_later (x INT); INSERT INTO customer_${id}.added_later VALUES (1);
    DROP VIEW customer_${id}.post_titles;`);
}

beforeAll(async () => {
  t = await createTestEnv();
  siteA = await buildSite(t.customersRoot, A);
  await buildSite(t.customersRoot, B, 'wordpress', 'b');
  await createCustomerDatabase(A);
  await createCustomerDatabase(B);
});

afterAll(async () => {
  await dropCustomerDatabases(A);
  await dropCustomerDatabases(B);
  await destroyTestEnv(t);
});

describe('customer-backup', () => {
  it('reports phases, the snapshot id from the summary and the tags, and removes the dump folder', async () => {
    const label = 'Before the “big” update, ünïcode; commas, too';
    const r = await run(t, 'customer-backup', [String(A), 'both', '--label', label, '--job', '42']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(phases(r.events)).toEqual([
      'PREPARING',
      'DUMPING_DATABASE',
      'UPLOADING',
      'APPLYING_RETENTION',
    ]);
    const snap = snapshotEvent(r.events);
    expect(snap?.id).toMatch(/^[0-9a-f]{64}$/);
    expect(snap?.tags).toEqual(
      expect.arrayContaining([`customer-${A}`, 'manual', 'both', 'job-42']),
    );
    const labelTag = snap?.tags.find((x) => x.startsWith('label:')) ?? '';
    expect(Buffer.from(labelTag.slice(6), 'base64url').toString('utf8')).toBe(label);
    const listed = await listSnapshots(t, 'manual');
    expect(listed.map((s) => s.id)).toContain(snap?.id);
    expect(await exists(path.join(t.dataDir, 'work', 'dumps', `customer-${A}`))).toBe(false);
    expect(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .every((l) => JSON.parse(l).type),
    ).toBe(true);
  });

  it('fails with DATABASE_DUMP_FAILED when the database does not exist, leaving no dump folder', async () => {
    const id = randomCustomerId();
    await buildSite(t.customersRoot, id);
    const r = await run(t, 'customer-backup', [String(id), 'db']);
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('DATABASE_DUMP_FAILED');
    expect(await exists(path.join(t.dataDir, 'work', 'dumps', `customer-${id}`))).toBe(false);
  });
});

describe.each(['files', 'db', 'both'] as const)('restore of scope %s', (scope) => {
  it(`puts back exactly the backed-up ${scope} and leaves the rest alone`, async () => {
    await rm(path.join(siteA, 'wordpress'), { recursive: true, force: true });
    await buildSite(t.customersRoot, A);
    await createCustomerDatabase(A);
    const beforeFiles = await siteManifest(siteA);
    const beforeDb = await dbManifest(A);
    const compose = await readFile(path.join(siteA, 'docker-compose.yml'));
    const b = await run(t, 'customer-backup', [String(A), scope]);
    expect(b.exitCode, b.stderr).toBe(0);
    const snap = snapshotEvent(b.events);
    expect(snap?.tags).toContain(scope);

    await mutate(A, siteA);
    await writeFile(
      path.join(siteA, 'docker-compose.yml'),
      'services: {} # edited after the backup\n',
    );
    const mutatedFiles = await siteManifest(siteA);
    const mutatedDb = await dbManifest(A);

    const logBefore = (await readLog(t, A)).length;
    const r = await run(t, 'customer-restore', [
      String(A),
      String(snap?.id).slice(0, 12),
      scope,
      'manual',
      '--job',
      '7',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const expected = ['VERIFYING', 'CHECKING_SPACE', 'SAFETY_SNAPSHOT', 'DOWNLOADING'];
    if (scope !== 'files') expected.push('IMPORTING_DATABASE');
    expected.push('SWAPPING', 'STORING_UNDO_POINT', 'CLEANING_UP');
    expect(phases(r.events)).toEqual(expected);

    expect(await siteManifest(siteA)).toEqual(scope === 'db' ? mutatedFiles : beforeFiles);
    expect(await dbManifest(A)).toEqual(scope === 'files' ? mutatedDb : beforeDb);
    expect(await readFile(path.join(siteA, 'docker-compose.yml'), 'utf8')).toBe(
      'services: {} # edited after the backup\n',
    );
    await writeFile(path.join(siteA, 'docker-compose.yml'), compose);

    // The safety snapshot holds what was replaced.
    const safety = snapshotEvent(r.events, 'safety');
    expect(safety?.tags).toEqual(
      expect.arrayContaining([`customer-${A}`, 'safety', scope, 'job-7']),
    );
    // Maintenance only during the swap, site stopped then started in maintenance.
    const m = r.events.filter((e) => e.type === 'maintenance');
    expect(m.map((e) => e.on)).toEqual([true, false]);
    expect(r.events.findIndex((e) => e.type === 'maintenance')).toBeGreaterThan(
      r.events.findIndex((e) => e.phase === 'SWAPPING'),
    );
    expect((await readLog(t, A)).slice(logBefore)).toEqual(['stop', 'start maintenance']);
    expect(await exists(path.join(siteA, '.maintenance'))).toBe(false);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
    console.log(
      `maintenance window (small site, ${scope}): ${Number(m[1]?.at) - Number(m[0]?.at)} ms`,
    );
  });
});

describe('retention', () => {
  it('keeps exactly the newest five manual backups of a customer and never touches another customer', async () => {
    const bIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await run(t, 'customer-backup', [String(B), 'files']);
      bIds.push(String(snapshotEvent(r.events)?.id));
    }
    const aIds: string[] = [];
    const scopes = ['db', 'files', 'both', 'db', 'files', 'both', 'db'];
    let removed: string[] = [];
    for (const scope of scopes) {
      const r = await run(t, 'customer-backup', [String(A), scope]);
      expect(r.exitCode, r.stderr).toBe(0);
      aIds.push(String(snapshotEvent(r.events)?.id));
      removed = removed.concat(
        (r.events.find((e) => e.type === 'retention')?.removed as string[]) ?? [],
      );
    }
    const listed = await listSnapshots(t, 'manual');
    const aManual = listed.filter(
      (s) => s.tags.includes(`customer-${A}`) && s.tags.includes('manual'),
    );
    expect(aManual.map((s) => s.id).sort()).toEqual(aIds.slice(-5).sort());
    for (const id of bIds) expect(listed.map((s) => s.id)).toContain(id);
    for (const id of removed) expect(listed.map((s) => s.id)).not.toContain(id);
    expect(removed).toEqual(expect.arrayContaining(aIds.slice(0, 2)));
  });

  it("the site's stop and start commands get CUSTOMER_ID, SITE_DIR, PATH and DOCKER_*, never the worker's secrets", async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(B), 'db'])).events);
    const seen = path.join(t.customersRoot, `site-env-${B}`);
    const r = await run(t, 'customer-restore', [String(B), String(snap?.id), 'db', 'manual'], {
      BACKUPS_SITE_STOP_COMMAND: `env > "${seen}"`,
      BACKUPS_DB_PASSWORD: 'secret-db-password',
      AWS_SECRET_ACCESS_KEY: 'secret-storage-key',
      RESTIC_REST_PASSWORD: 'secret-rest-password',
      DOCKER_HOST: 'unix:///run/test-docker.sock',
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const env = (await readFile(seen, 'utf8')).split('\n');
    expect(env).toContain(`CUSTOMER_ID=${B}`);
    expect(env).toContain(`SITE_DIR=${path.join(t.customersRoot, `customer-${B}`)}`);
    expect(env).toContain('DOCKER_HOST=unix:///run/test-docker.sock');
    expect(env.some((line) => line.startsWith('PATH='))).toBe(true);
    expect(env.join('\n')).not.toMatch(/secret-|^BACKUPS_|^RESTIC_|^AWS_/m);
    await rm(seen);
  });

  it('keeps the last three safety snapshots of a customer only', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(B), 'db'])).events);
    for (let i = 0; i < 4; i++) {
      const r = await run(t, 'customer-restore', [String(B), String(snap?.id), 'db', 'manual']);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const listed = await listSnapshots(t, 'manual');
    const bSafety = listed.filter(
      (s) => s.tags.includes(`customer-${B}`) && s.tags.includes('safety'),
    );
    expect(bSafety).toHaveLength(3);
    // A's safety snapshots (from the scope tests) are still there.
    expect(listed.some((s) => s.tags.includes(`customer-${A}`) && s.tags.includes('safety'))).toBe(
      true,
    );
  });
});

describe('refusals', () => {
  it("refuses another customer's snapshot with SNAPSHOT_NOT_OWNED and changes nothing", async () => {
    const snapB = snapshotEvent((await run(t, 'customer-backup', [String(B), 'both'])).events);
    const files = await siteManifest(siteA);
    const db = await dbManifest(A);
    const before = (await listSnapshots(t, 'manual')).length;
    const r = await run(t, 'customer-restore', [String(A), String(snapB?.id), 'both', 'manual']);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
    expect(await siteManifest(siteA)).toEqual(files);
    expect(await dbManifest(A)).toEqual(db);
    expect((await listSnapshots(t, 'manual')).length).toBe(before); // no safety snapshot
    expect(await readLog(t, A)).not.toContain('stop-after-refusal');
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
  });

  it('refuses an unknown snapshot id with SNAPSHOT_NOT_FOUND', async () => {
    const r = await run(t, 'customer-restore', [String(A), 'deadbeefdeadbeef', 'files', 'manual']);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_FOUND');
  });

  it('refuses with INSUFFICIENT_SPACE when the staged copy would not fit, changing nothing', async () => {
    const snap = snapshotEvent((await run(t, 'customer-backup', [String(A), 'files'])).events);
    await writeFile(path.join(siteA, 'wordpress', 'after.txt'), 'x');
    const files = await siteManifest(siteA);
    const r = await run(t, 'customer-restore', [String(A), String(snap?.id), 'files', 'manual'], {
      BACKUPS_SPACE_MARGIN_MB: String(1024 * 1024 * 1024),
    });
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('INSUFFICIENT_SPACE');
    expect(phases(r.events)).toEqual(['VERIFYING', 'CHECKING_SPACE']);
    expect(await siteManifest(siteA)).toEqual(files);
    await rm(path.join(siteA, 'wordpress', 'after.txt'));
  });

  it('reports REPOSITORY_UNAVAILABLE (exit 5) for a wrong password and a missing repository', async () => {
    await mkdir(path.join(t.dataDir, 'other'), { recursive: true });
    await writeFile(path.join(t.dataDir, 'other', 'wrong.pass'), 'not the password');
    const wrong = await run(t, 'customer-backup', [String(A), 'files'], {
      BACKUPS_MANUAL_PASSWORD_FILE: path.join(t.dataDir, 'other', 'wrong.pass'),
    });
    expect([wrong.exitCode, errorCode(wrong.events)]).toEqual([5, 'REPOSITORY_UNAVAILABLE']);
    const missing = await run(t, 'customer-backup', [String(A), 'files'], {
      BACKUPS_MANUAL_REPOSITORY: path.join(t.dataDir, 'other', 'nothing-here'),
    });
    expect([missing.exitCode, errorCode(missing.events)]).toEqual([5, 'REPOSITORY_UNAVAILABLE']);
  });
});

describe('recover', () => {
  it('is safe to run when nothing is wrong', async () => {
    const files = await siteManifest(siteA);
    const r = await run(t, 'customer-restore', ['--recover', String(A)]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.events).toEqual([{ type: 'recovered', action: 'none' }]);
    expect(await siteManifest(siteA)).toEqual(files);
  });
});
