import { existsSync } from 'node:fs';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { sql } from '../executors/support/harness.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const serverDir = path.resolve(import.meta.dirname, '../..');

describe('the worker survives crashes, Redis loss and busy repositories', () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  const node = 'node-r';

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer(node);
  });
  afterAll(async () => {
    await world?.destroy();
  });

  const site = () => path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);

  /** The worker in a process group of its own, to be SIGKILLed with its scripts. */
  const workerProcess = (env: Record<string, string> = {}) => {
    const cfg = world.config(node);
    return execa('node', ['--import', 'tsx', 'src/main/worker.ts'], {
      cwd: serverDir,
      env: {
        ...world.scriptsEnv.env,
        BACKUPS_DB_NAME: cfg.BACKUPS_DB_NAME,
        BACKUPS_REDIS_PREFIX: cfg.BACKUPS_REDIS_PREFIX,
        BACKUPS_NODE: node,
        BACKUPS_WORKER_PORT: '0',
        BACKUPS_DOWNLOAD_PORT: '0',
        BACKUPS_DAILY_ENABLED: 'false',
        // indexing new backups is tested on its own (snapshot-index.test.ts)
        BACKUPS_INDEX_NEW_BACKUPS: 'false',
        BACKUPS_HEARTBEAT_SECONDS: '1',
        BACKUPS_LOG_LEVEL: 'warn',
        ...env,
      },
      extendEnv: false,
      detached: true,
      reject: false,
      stdio: 'ignore',
    });
  };

  it('SIGKILL of the worker mid-restore, then a restart: the site is whole, open, and the job FAILED "interrupted"', async () => {
    let worker = await world.startWorker(node);
    const backup = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
    });
    const made = await world.waitForJob(backup.id, ['completed', 'failed']);
    expect(made.status).toBe('completed');
    await worker.stop();

    // The state after the backup changes; a restore would bring the old one back.
    await writeFile(path.join(site(), 'wordpress/index.php'), 'changed after the backup');
    await sql(`UPDATE customer_${customer.id}.options SET value = 'changed' WHERE name = 'theme'`);

    const child = workerProcess();
    const restore = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId: made.snapshotId,
    });
    const until = Date.now() + 60_000;
    for (;;) {
      const row = await world.job(restore.id);
      if (row.phase === 'DOWNLOADING' || row.phase === 'IMPORTING_DATABASE') break;
      if (row.status !== 'pending' && row.status !== 'running')
        throw new Error(`restore ended: ${row.status}`);
      if (Date.now() > until) throw new Error('the restore never reached DOWNLOADING');
      await new Promise((r) => setTimeout(r, 20));
    }
    // the whole process group: the worker, the script, restic
    process.kill(-(child.pid as number), 'SIGKILL');
    await child;

    worker = await world.startWorker(node);
    const failed = await world.job(restore.id);
    expect(failed.status).toBe('failed');
    expect(failed.errorCode).toBe('INTERRUPTED');
    expect(failed.errorMessage).toMatch(/interrupted/i);
    expect(existsSync(path.join(site(), '.maintenance'))).toBe(false);
    // entirely old: the restore had not switched anything over
    expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toBe(
      'changed after the backup',
    );
    expect(
      await sql(`SELECT value FROM customer_${customer.id}.options WHERE name = 'theme'`),
    ).toBe('changed');
    const log = await readFile(world.scriptsEnv.logFile(customer.id), 'utf8').catch(() => '');
    expect(log).not.toMatch(/start maintenance/);

    const again = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId: made.snapshotId,
    });
    const restored = await world.waitForJob(again.id, ['completed', 'failed']);
    expect(restored.errorMessage).toBeNull();
    expect(restored.status).toBe('completed');
    expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toContain(
      'wp-blog-header',
    );
    expect(
      await sql(`SELECT value FROM customer_${customer.id}.options WHERE name = 'theme'`),
    ).toBe('twenty');
    await worker.stop();
  });

  it('SIGKILL of the worker just after the switch-over: the restart finishes the restore, COMPLETED with its undo point', async () => {
    let worker = await world.startWorker(node);
    const made = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'manual' });
    expect(made.status).toBe('completed');
    await worker.stop();
    await writeFile(path.join(site(), 'wordpress/index.php'), 'changed before the restore');

    // The site stops slowly, so the row lock below is in place before the switch-over ends.
    const child = workerProcess({
      BACKUPS_SITE_STOP_COMMAND: `${world.scriptsEnv.env.BACKUPS_SITE_STOP_COMMAND}; sleep 2`,
    });
    const restore = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId: made.snapshotId,
    });
    const until = Date.now() + 60_000;
    while ((await world.job(restore.id)).phase !== 'SWAPPING') {
      if (Date.now() > until) throw new Error('the restore never reached SWAPPING');
      await new Promise((r) => setTimeout(r, 20));
    }
    // The worker cannot write the job's row any more: it dies before it records COMPLETED.
    const lock = execa(
      'mariadb',
      [
        '-uroot',
        '-e',
        `BEGIN; SELECT id FROM ${world.db.name}.backup_jobs WHERE id = ${restore.id} FOR UPDATE; SELECT SLEEP(120);`,
      ],
      { reject: false },
    );
    const index = path.join(site(), 'wordpress/index.php');
    while (
      (await readFile(index, 'utf8').catch(() => '')) === 'changed before the restore' ||
      existsSync(path.join(site(), '.maintenance'))
    ) {
      if (Date.now() > until) throw new Error('the site was never switched over');
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(-(child.pid as number), 'SIGKILL');
    await child;
    lock.kill('SIGKILL');
    await lock;
    expect((await world.job(restore.id)).status).toBe('running');

    worker = await world.startWorker(node);
    const done = await world.job(restore.id);
    expect(done.status).toBe('completed');
    expect(done.errorCode).toBeNull();
    expect(done.phase).toBe('FINISHED_AFTER_INTERRUPTION');
    expect(done.safetySnapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(await readFile(index, 'utf8')).toContain('wp-blog-header');
    expect(existsSync(path.join(site(), '.maintenance'))).toBe(false);
    await worker.stop();
  });

  it('Redis emptied with 5 pending jobs: after a worker restart all 5 run', async () => {
    const customers = [
      customer,
      ...(await Promise.all([1, 2, 3, 4].map(() => world.customer(node)))),
    ];
    const jobs = [];
    for (const c of customers) {
      jobs.push(
        await world.enqueue({ customer: c, kind: 'backup', scope: 'database', source: 'manual' }),
      );
    }
    // FLUSHALL of this test's namespace (the Redis server is shared with other test files)
    const redis = new Redis('redis://127.0.0.1:6379/0');
    const keys = await redis.keys(`${world.prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await redis.del(...keys);
    await redis.quit();

    const worker = await world.startWorker(node);
    for (const job of jobs) {
      const done = await world.waitForJob(job.id, ['completed', 'failed']);
      expect(done.status).toBe('completed');
    }
    await worker.stop();
  });

  it('a repository held by another restic process: the backup completes, its retention waits for the lock, then is applied', async () => {
    const worker = await world.startWorker(node);
    await world.customerIdle(customer.id);
    // Another restic process holds the repository: the backup itself (a shared lock) goes on,
    // retention's `forget` (exclusive) has to wait for it.
    const release = await world.holdRepository('manual');
    const job = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    const done = await world.waitForJob(job.id, ['completed', 'failed']);
    expect(done.errorMessage).toBeNull();
    expect(done.status).toBe('completed');
    expect(done.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    // the script is still at its retention: it holds the customer's lock
    expect(await world.customerLocked(customer.id)).toBe(true);
    await release();
    // the next job of the customer waits for that retention, then runs
    const next = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    const after = await world.waitForJob(next.id, ['completed', 'failed']);
    expect(after.errorMessage).toBeNull();
    expect(after.status).toBe('completed');
    expect(worker.retention.size).toBe(0);
    expect((await world.job(job.id)).status).toBe('completed');
    await worker.stop();
  });

  it('a restore is COMPLETED once the site is switched over; its housekeeping keeps the customer lock, the next job waits for it, and a kill during it leaves the job COMPLETED', async () => {
    const worker = await world.startWorker(node);
    const lockHeld = () => world.customerLocked(customer.id);
    const made = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'manual' });
    expect(made.status).toBe('completed');
    await world.customerIdle(customer.id);
    await writeFile(path.join(site(), 'wordpress/index.php'), 'changed after the backup');
    await sql(`UPDATE customer_${customer.id}.options SET value = 'changed' WHERE name = 'theme'`);

    // The undo point's retention (forget: exclusive) waits for a holder of the repository.
    const { restore: done, release } = await world.restoreWithHousekeepingHeld(
      customer,
      String(made.snapshotId),
    );
    let released = false;
    try {
      expect(done.errorMessage).toBeNull();
      expect(done.status).toBe('completed');
      // the site is already entirely new and open
      expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toContain(
        'wp-blog-header',
      );
      expect(
        await sql(`SELECT value FROM customer_${customer.id}.options WHERE name = 'theme'`),
      ).toBe('twenty');
      expect(existsSync(path.join(site(), '.maintenance'))).toBe(false);
      // its script is still at its housekeeping, under the customer's lock
      expect(await lockHeld()).toBe(true);

      // the customer's next job waits for that lock (its slot is taken, its script waits)
      const next = await world.enqueue({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      await new Promise((r) => setTimeout(r, 1500));
      expect(['pending', 'running']).toContain((await world.job(next.id)).status);

      // a kill during the housekeeping: the job stays COMPLETED, the site stays whole
      const pids = await execa('pgrep', ['-o', '-f', `customer-restore ${customer.id} `], {
        reject: false,
      });
      expect(pids.stdout.trim()).toMatch(/^\d+$/);
      process.kill(Number(pids.stdout.trim()), 'SIGKILL');
      await release();
      released = true;
      const after = await world.waitForJob(next.id, ['completed', 'failed']);
      expect(after.errorMessage).toBeNull();
      expect(after.status).toBe('completed');
      // The worker puts the site in order after the kill (the recovery) before it starts the
      // customer's next job: by the time that one is done, the undo point is stored and the
      // restore's folder is gone.
      const restoreDir = path.join(
        world.scriptsEnv.customersRoot,
        '.restore',
        `customer-${customer.id}`,
      );
      const restored = await world.job(done.id);
      expect(restored.status).toBe('completed');
      expect(restored.errorCode).toBeNull();
      expect(restored.finishedAt?.getTime()).toBe(done.finishedAt?.getTime());
      // its undo point was stored, by the script or by the recovery after the kill
      expect(restored.safetySnapshotId).toMatch(/^[0-9a-f]{64}$/);
      expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toContain(
        'wp-blog-header',
      );
      expect(existsSync(path.join(site(), '.maintenance'))).toBe(false);
      expect(existsSync(restoreDir)).toBe(false);
      expect(await sql(`SHOW DATABASES LIKE 'customer\\_${customer.id}\\_\\_%'`)).toBe('');
    } finally {
      if (!released) await release();
      await worker.stop();
    }
  });

  it('a restore whose undo point cannot be stored yet is COMPLETED; the replaced folder is kept until the next sweep stores it and puts it on the job', async () => {
    const worker = await world.startWorker(node);
    const made = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'manual' });
    expect(made.status).toBe('completed');
    await world.customerIdle(customer.id);
    await writeFile(path.join(site(), 'wordpress/index.php'), 'the state the undo point keeps');

    // From now on `restic backup` fails as if the repository were gone (restore works).
    const broken = path.join(world.scriptsEnv.dataDir, 'safety-gone');
    const wrapper = path.join(world.scriptsEnv.dataDir, 'restic-wrapper');
    await writeFile(
      wrapper,
      '#!/bin/bash\nfor a in "$@"; do if [ "$a" = backup ] && [ -e "$BACKUP_FAILS" ]; then echo "Fatal: unable to open config file" >&2; exit 10; fi; done\nexec restic "$@"\n',
    );
    await chmod(wrapper, 0o755);
    await writeFile(broken, '');
    const env = world.scriptsEnv.env;
    env.BACKUPS_RESTIC_BIN = wrapper;
    env.BACKUP_FAILS = broken;
    try {
      const restore = await world.runJob({
        customer,
        kind: 'restore',
        scope: 'both',
        source: 'manual',
        snapshotId: made.snapshotId,
      });
      expect(restore.errorMessage).toBeNull();
      expect(restore.status).toBe('completed');
      await world.customerIdle(customer.id);
      expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toContain(
        'wp-blog-header',
      );
      const undoFolder = path.join(
        world.scriptsEnv.customersRoot,
        '.restore',
        `customer-${customer.id}`,
        'undo',
      );
      const kept = path.join(undoFolder, `customer-${customer.id}`, 'wordpress', 'index.php');
      expect(await readFile(kept, 'utf8')).toBe('the state the undo point keeps');
      expect((await world.job(restore.id)).safetySnapshotId).toBeNull();

      // a sweep while the repository is still gone changes nothing
      await worker.syncCatalog();
      expect(await readFile(kept, 'utf8')).toBe('the state the undo point keeps');

      // the repository is back: the next sweep stores it, on the job and in the catalog (or
      // the worker's own retry of the housekeeping does, if it holds the customer's turn
      // when the sweep comes: the sweep then leaves the customer to it)
      await rm(broken);
      await worker.syncCatalog();
      let settled = await world.job(restore.id);
      for (let i = 0; i < 120 && !settled.safetySnapshotId; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        settled = await world.job(restore.id);
      }
      expect(settled.status).toBe('completed');
      expect(settled.safetySnapshotId).toMatch(/^[0-9a-f]{64}$/);
      const rows = await world.db.orm.em
        .fork()
        .find(Snapshot, { customer: customer.id, snapshotId: settled.safetySnapshotId ?? '' });
      expect(rows.map((r) => r.source)).toEqual(['safety']);
      expect(existsSync(undoFolder)).toBe(false);

      // and it holds what the restore replaced
      const undo = await world.runJob({
        customer,
        kind: 'restore',
        scope: 'files',
        source: 'safety',
        snapshotId: settled.safetySnapshotId ?? '',
      });
      expect(undo.errorMessage).toBeNull();
      expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toBe(
        'the state the undo point keeps',
      );
      await world.customerIdle(customer.id);
    } finally {
      delete env.BACKUPS_RESTIC_BIN;
      delete env.BACKUP_FAILS;
      await rm(broken, { force: true });
      await worker.stop();
    }
  });

  it('a wrong repository password fails the job with a clear message and leaves the site alone', async () => {
    const passFile = path.join(world.scriptsEnv.dataDir, 'secrets/manual-repository.pass');
    const good = await readFile(passFile, 'utf8');
    const before = await readFile(path.join(site(), 'wordpress/index.php'), 'utf8');
    const worker = await world.startWorker(node);
    await writeFile(passFile, 'not the password\n');
    try {
      const job = await world.enqueue({
        customer,
        kind: 'backup',
        scope: 'both',
        source: 'manual',
      });
      const done = await world.waitForJob(job.id, ['completed', 'failed']);
      expect(done.status).toBe('failed');
      expect(done.errorCode).toBe('REPOSITORY_UNAVAILABLE');
      expect(done.errorMessage).toMatch(/storage|repository/i);
      expect(done.snapshotId).toBeNull();
    } finally {
      await writeFile(passFile, good, { mode: 0o600 });
      await worker.stop();
    }
    expect(await readFile(path.join(site(), 'wordpress/index.php'), 'utf8')).toBe(before);
    expect(existsSync(path.join(site(), '.maintenance'))).toBe(false);
  });
});
