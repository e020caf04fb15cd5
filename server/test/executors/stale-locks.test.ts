// A restic killed by a signal (SIGKILL, OOM, its worker killed) leaves its lock in the
// repository, and restic never ignores a stale lock by itself: every forget or prune after it
// waited --retry-lock and failed "locked" (the chaos soak: jobs still PENDING at the end of the
// settle behind a backup whose retention waited 2 minutes). The scripts remove the locks of
// dead restic processes (restic unlock: stale ones only) when their own restic was killed,
// and when a restic of theirs finds the repository locked.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositoryEnv } from '../support/sandbox.js';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  randomCustomerId,
  run,
  sleep,
  snapshotEvent,
  start,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();

// The repository's locks: files named by a 64-hex id. restic's local backend writes a lock as
// `<id>-tmp-<n>`, syncs it and renames it: a restic killed before the rename (its fsync is slow
// on a loaded disk) leaves that temporary file, which is no lock (restic lists only ids).
const locks = async () =>
  (await readdir(path.join(t.dataDir, 'repos', 'manual', 'locks'))).filter((name) =>
    /^[0-9a-f]{64}$/.test(name),
  );
const resticEnv = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  ...repositoryEnv(t.dataDir, 'manual'),
});

/** A restic backup of the manual repository, SIGKILLed once it holds its lock. */
async function killedResticLock(): Promise<void> {
  const holder = execa('restic', ['backup', '--stdin', '--stdin-filename', 'held'], {
    env: resticEnv(),
    extendEnv: false,
    reject: false,
    stdin: 'pipe',
  });
  const until = Date.now() + 20_000;
  while ((await locks()).length === 0) {
    if (Date.now() > until) throw new Error('restic never took its lock');
    await sleep(50);
  }
  holder.kill('SIGKILL');
  await holder;
}

beforeAll(async () => {
  // the lock wait of production: a stale lock would hold the forget for 2 minutes
  t = await createTestEnv({ BACKUPS_RESTIC_RETRY_LOCK: '2m', BACKUPS_MANUAL_KEEP: '1' });
  await buildSite(t.customersRoot, A);
  await createCustomerDatabase(A);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

describe('locks left by a killed restic', () => {
  it("a backup's retention is not held up by the lock of a restic that was killed", async () => {
    const first = await run(t, 'customer-backup', [String(A), 'db']);
    expect(first.exitCode).toBe(0);
    const firstId = snapshotEvent(first.events)?.id;

    await killedResticLock();
    expect(await locks()).toHaveLength(1); // restic did not remove it: it was killed

    const started = Date.now();
    const second = await run(t, 'customer-backup', [String(A), 'db']);
    const seconds = (Date.now() - started) / 1000;
    expect(second.exitCode).toBe(0);
    // keep 1: the first backup was forgotten, not deferred for a busy repository
    const retention = second.events.find((e) => e.type === 'retention');
    expect(retention).toMatchObject({ removed: [firstId] });
    expect(retention?.deferred).toBeUndefined();
    expect(seconds).toBeLessThan(60);
    expect(await locks()).toHaveLength(0);
    const listed = await execa('restic', ['snapshots', '--json', '--no-lock'], {
      env: resticEnv(),
      extendEnv: false,
    });
    const ids = (JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id);
    expect(ids).toEqual([snapshotEvent(second.events)?.id]);
  }, 120_000);

  it('a lock of a live restic stays: the retention waits for it and is deferred', async () => {
    const holder = execa('restic', ['backup', '--stdin', '--stdin-filename', 'held'], {
      env: resticEnv(),
      extendEnv: false,
      reject: false,
      stdin: 'pipe',
    });
    try {
      while ((await locks()).length === 0) await sleep(50);
      const r = await run(t, 'customer-backup', [String(A), 'db'], {
        BACKUPS_RESTIC_RETRY_LOCK: '8s',
      });
      expect(r.exitCode).toBe(0);
      expect(r.events.find((e) => e.type === 'retention')).toMatchObject({ deferred: true });
      expect(await locks()).toHaveLength(1); // the live one
    } finally {
      holder.stdin?.end('held');
      await holder;
    }
    expect(await locks()).toHaveLength(0);
  }, 120_000);

  it("a script whose restic is SIGKILLed removes that restic's lock at once", async () => {
    // a backup's upload, its restic killed while it holds the lock
    // (slowed to 1 KiB/s, so that it still holds its lock when it is killed)
    const backup = start(t, 'customer-backup', [String(A), 'db'], {
      BACKUPS_RESTIC_LIMIT_UPLOAD: '1',
    });
    const until = Date.now() + 30_000;
    let resticPid: number | undefined;
    while (!resticPid && Date.now() < until) {
      if ((await locks()).length > 0) {
        const ps = await execa('pgrep', ['-x', 'restic', '-g', String(backup.proc.pid)], {
          reject: false,
        });
        resticPid = Number(ps.stdout.trim().split('\n')[0]) || undefined;
      }
      if (!resticPid) await sleep(20);
    }
    if (!resticPid) throw new Error('the backup never ran restic with its lock taken');
    process.kill(resticPid, 'SIGKILL');
    const ended = await backup.proc;
    expect(ended.exitCode).not.toBe(0);
    expect(await locks()).toHaveLength(0);
  }, 120_000);
});
