import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import type { WorkerHandle } from '../../src/worker/worker.js';
import { exists, run, siteManifest } from '../executors/support/harness.js';
import { type RepositoryHost, repositoryHost } from '../support/repository-servers.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

/**
 * Polls a job row until its phase is `phase` and, with `moved`, it has moved bytes (or it ended).
 * A restore counts bytes only once a whole pack is in (3 MiB of one file is one pack): its
 * download is over by then, so a restore is caught at the phase itself.
 */
async function waitForPhase(
  world: WorkerWorld,
  id: number,
  phase: string,
  moved = true,
): Promise<void> {
  const until = Date.now() + 90_000;
  for (;;) {
    const job = await world.job(id);
    if (job.phase === phase && (!moved || Number(job.bytesDone ?? 0) > 0)) return;
    if (['completed', 'failed', 'cancelled'].includes(job.status))
      throw new Error(`job ${id} ended (${job.status}) before ${phase}`);
    if (Date.now() > until) throw new Error(`job ${id} never reached ${phase}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The repository server stops while a job talks to it. Bandwidth limits (configuration) keep
// the upload and the download going long enough to stop the server in the middle.
describe('a rest-server that stops mid-job', () => {
  let host: RepositoryHost;
  let world: WorkerWorld;
  let customer: ICustomer;
  let worker: WorkerHandle;
  const node = 'node-f';
  const site = () => path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'repository-faults-'));
    host = await repositoryHost('rest', dir);
    world = await createWorkerWorld(
      {
        BACKUPS_RESTIC_LIMIT_UPLOAD: '256',
        BACKUPS_RESTIC_LIMIT_DOWNLOAD: '256',
        BACKUPS_REPOSITORY_STALL_SECONDS: '3',
      },
      { dir, repositories: host.node },
    );
    customer = await world.customer(node);
    // 3 MiB that does not compress: about 12 s at 256 KiB/s
    await writeFile(path.join(site(), 'wordpress', 'video.bin'), randomBytes(3 * 1024 * 1024));
    worker = await world.startWorker(node);
  });
  afterAll(async () => {
    await world?.destroy();
    await host?.destroy();
  });

  it('mid-backup: the job FAILS with REPOSITORY_UNAVAILABLE in plain words, and no half snapshot is anywhere', async () => {
    const job = await world.enqueue({ customer, kind: 'backup', scope: 'files', source: 'manual' });
    await waitForPhase(world, job.id, 'UPLOADING');
    await host.stopServer('SIGKILL');
    const done = await world.waitForJob(job.id, ['completed', 'failed'], 120_000);
    expect(done.status).toBe('failed');
    expect(done.errorCode, done.errorMessage ?? '').toBe('REPOSITORY_UNAVAILABLE');
    expect(done.errorMessage).toMatch(/backup storage stopped answering/);
    await world.customerIdle(customer.id);
    await host.startServer();
    expect(await world.db.orm.em.fork().count(Snapshot, { customer: customer.id })).toBe(0);
    const r = await execa('restic', ['snapshots', '--json'], { env: world.resticEnv('manual') });
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('mid-restore (downloading into staging): the site is unchanged, open, and not in maintenance', async () => {
    const backup = await world.runJob(
      { customer, kind: 'backup', scope: 'files', source: 'manual' },
      180_000,
    );
    expect(backup.status, backup.errorMessage ?? '').toBe('completed');
    await world.customerIdle(customer.id);
    await writeFile(path.join(site(), 'wordpress', 'changed-after.php'), '<?php // new');
    const before = await siteManifest(site());

    const job = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'files',
      source: 'manual',
      snapshotId: backup.snapshotId,
    });
    await waitForPhase(world, job.id, 'DOWNLOADING', false);
    // the pack of 3 MiB takes about 12 s at 256 KiB/s: stop the server inside it
    await new Promise((r) => setTimeout(r, 2_000));
    await host.stopServer('SIGKILL');
    const done = await world.waitForJob(job.id, ['completed', 'failed'], 120_000);
    expect(done.status).toBe('failed');
    expect(done.errorCode, done.errorMessage ?? '').toBe('REPOSITORY_UNAVAILABLE');
    await world.customerIdle(customer.id);
    expect(await siteManifest(site())).toEqual(before);
    expect(await exists(path.join(site(), '.maintenance'))).toBe(false);
    // the site was never stopped for this restore
    const log = await readFile(world.scriptsEnv.logFile(customer.id), 'utf8').catch(() => '');
    expect(log).not.toMatch(/stop/);
    await host.startServer();
  });

  it('a daily backup that found the repository down is FAILED and queued for the next retry', async () => {
    await host.stopServer();
    const done = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'daily',
    });
    await host.startServer();
    expect(done.status).toBe('failed');
    expect(done.errorCode, done.errorMessage ?? '').toBe('REPOSITORY_UNAVAILABLE');
    expect(worker.schedule.armed.retry?.customers).toEqual([customer.id]);
    // the retry backs it up once the repository is back
    await worker.schedule.retry([customer.id]);
    const [retried] = await world.db.orm.em
      .fork()
      .find(BackupJob, { customer: customer.id, source: 'daily', status: { $ne: 'failed' } });
    expect(retried).toBeDefined();
    const after = await world.waitForJob(retried?.id ?? 0, ['completed', 'failed']);
    expect(after.status, after.errorMessage ?? '').toBe('completed');
    // its housekeeping (retention) still talks to the server after COMPLETED: let it end
    // before the folders go (a lock written meanwhile failed the clean-up)
    await world.customerIdle(customer.id);
  });
});

describe('an sftp repository host with a key that is not the one on record', () => {
  let host: RepositoryHost;
  let world: WorkerWorld;
  const hostKeyWords =
    /could not prove it is the real one: its identity \(SSH host key\) does not match the one on record, so nothing was sent to it/;

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'host-key-'));
    host = await repositoryHost('sftp', dir);
    world = await createWorkerWorld({}, { dir, repositories: host.node });
  });
  afterAll(async () => {
    await world?.destroy();
    await host?.destroy();
  });

  const repositoryIds = async () => {
    const r = await execa('restic', [...host.node.resticArgs, 'snapshots', '--json'], {
      env: world.resticEnv('manual'),
    });
    return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id);
  };

  it('is refused: a backup FAILS naming the host key, nothing is sent, and a restore is refused alike', async () => {
    const customer = await world.customer('node-h');
    await world.startWorker('node-h');
    await host.sftp?.recordWrongHostKey();
    // restic passes ssh's words on only sometimes (they can come after it gave up): three
    // runs, each has to name the host key
    for (let i = 0; i < 3; i++) {
      const done = await world.runJob({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      expect(done.status).toBe('failed');
      expect(done.errorCode, done.errorMessage ?? '').toBe('REPOSITORY_UNAVAILABLE');
      expect(done.errorMessage).toMatch(hostKeyWords);
      await world.customerIdle(customer.id);
    }
    // every script says the same, every time (the listing the catalog and the maintainer use)
    for (let i = 0; i < 8; i++) {
      const listing = await run(world.scriptsEnv, 'backup-repository', ['manual', 'snapshots']);
      expect(listing.exitCode).toBe(5);
      expect(listing.events.find((e) => e.type === 'error')?.message).toMatch(hostKeyWords);
    }
    await host.sftp?.recordRightHostKey();
    expect(await repositoryIds()).toEqual([]);
    // with the right key on record the same backup works
    const again = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
    });
    expect(again.status, again.errorMessage ?? '').toBe('completed');
    await world.customerIdle(customer.id);

    const site = path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);
    await writeFile(path.join(site, 'wordpress', 'changed-after.php'), '<?php // new');
    const before = await siteManifest(site);
    await host.sftp?.recordWrongHostKey();
    const restore = await world.runJob({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId: again.snapshotId,
    });
    await host.sftp?.recordRightHostKey();
    expect(restore.status).toBe('failed');
    expect(restore.errorCode, restore.errorMessage ?? '').toBe('REPOSITORY_UNAVAILABLE');
    expect(restore.errorMessage).toMatch(hostKeyWords);
    await world.customerIdle(customer.id);
    expect(await siteManifest(site)).toEqual(before);
    expect(await exists(path.join(site, '.maintenance'))).toBe(false);
    expect(await repositoryIds()).toEqual([again.snapshotId]);
  });
});
