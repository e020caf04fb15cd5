import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import type { WorkerHandle } from '../../src/worker/worker.js';
import { sql } from '../executors/support/harness.js';
import {
  REPOSITORY_KINDS,
  type RepositoryHost,
  repositoryHost,
} from '../support/repository-servers.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

// The same jobs against each kind of repository: a local folder, sftp: through OpenSSH and
// rest: through rest-server over TLS, both on loopback (test/support/repository-servers.ts).
describe.each(REPOSITORY_KINDS)('the worker runs jobs end to end (%s repository)', (kind) => {
  let host: RepositoryHost;
  let world: WorkerWorld;
  let customer: ICustomer;
  let worker: WorkerHandle;
  let backupSnapshot: string;
  const node = 'node-a';

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), `worker-${kind}-`));
    host = await repositoryHost(kind, dir);
    world = await createWorkerWorld({ BACKUPS_MANUAL_KEEP: '2' }, { dir, repositories: host.node });
    customer = await world.customer(node);
    worker = await world.startWorker(node);
  });
  afterAll(async () => {
    await world?.destroy();
    await host?.destroy();
  });

  const content = () =>
    path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`, 'wordpress');

  it('a backup runs to COMPLETED with its phases, rising progress and the snapshot in the catalog', async () => {
    const recorder = await world.recordEvents(customer.id);
    const seen: { status: string; phase: string | null; progress: number }[] = [];
    let chain = Promise.resolve();
    const original = recorder.events.push.bind(recorder.events);
    recorder.events.push = (...items) => {
      for (const item of items) {
        chain = chain.then(async () => {
          const row = await world.job(item.id);
          seen.push({
            status: row.status,
            phase: row.phase ?? null,
            progress: Number(row.progress),
          });
        });
      }
      return original(...items);
    };
    const job = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
      label: 'before the update',
    });
    const done = await world.waitForJob(job.id, ['completed', 'failed']);
    await new Promise((r) => setTimeout(r, 300));
    await chain;
    await recorder.stop();

    expect(done.errorMessage).toBeNull();
    expect(done.status).toBe('completed');
    expect(done.progress).toBe(1);
    expect(done.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    backupSnapshot = done.snapshotId ?? '';

    const phases = [...new Set(seen.map((s) => s.phase).filter(Boolean))];
    expect(phases).toEqual(expect.arrayContaining(['DUMPING_DATABASE', 'UPLOADING']));
    expect(phases.indexOf('DUMPING_DATABASE')).toBeLessThan(phases.indexOf('UPLOADING'));
    const progresses = seen.map((s) => s.progress);
    expect(progresses).toEqual([...progresses].sort((a, b) => a - b));
    // The job's creation is published too (as the api's): pending, then running, then completed.
    const order = ['pending', 'running', 'completed'];
    const statuses = seen.map((s) => order.indexOf(s.status));
    expect(statuses).toEqual([...statuses].sort((a, b) => a - b));
    expect(seen.map((s) => s.status)).toContain('running');
    expect(seen.at(-1)?.status).toBe('completed');

    const rows = await world.db.orm.em.fork().find(Snapshot, { customer: customer.id });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      snapshotId: backupSnapshot,
      source: 'manual',
      scope: 'both',
      label: 'before the update',
      createdByJobId: job.id,
    });
    expect(rows[0]?.sizeBytes).toBeGreaterThan(100_000);
  });

  it('a restore puts files and rows back, takes an undo point, and leaves the site open', async () => {
    const logo = await readFile(path.join(content(), 'logo.png'));
    await writeFile(path.join(content(), 'logo.png'), 'defaced');
    await rm(path.join(content(), 'Grüße über.txt'));
    await writeFile(path.join(content(), 'new-after-backup.php'), '<?php');
    await sql(
      `UPDATE customer_${customer.id}.posts SET title = 'changed'; CREATE TABLE customer_${customer.id}.added_later (id int)`,
    );

    const job = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId: backupSnapshot,
    });
    const done = await world.waitForJob(job.id, ['completed', 'failed']);
    expect(done.errorMessage).toBeNull();
    expect(done.status).toBe('completed');

    expect(await readFile(path.join(content(), 'logo.png'))).toEqual(logo);
    expect(await readFile(path.join(content(), 'Grüße über.txt'), 'utf8')).toContain('Hallo');
    await expect(readFile(path.join(content(), 'new-after-backup.php'))).rejects.toThrow();
    expect(await sql(`SELECT title FROM customer_${customer.id}.posts ORDER BY id`)).toBe(
      'Hello\nGrüße\nThird',
    );
    expect(await sql(`SHOW TABLES FROM customer_${customer.id} LIKE 'added_later'`)).toBe('');
    await expect(
      readFile(
        path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`, '.maintenance'),
      ),
    ).rejects.toThrow();

    // the undo point is stored just after the switch-over, while the script keeps the lock
    await world.customerIdle(customer.id);
    const settled = await world.job(job.id);
    expect(settled.safetySnapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(settled.finishedAt?.getTime()).toBe(done.finishedAt?.getTime());
    const safety = await world.db.orm.em
      .fork()
      .find(Snapshot, { customer: customer.id, source: 'safety' });
    expect(safety.map((s) => s.snapshotId)).toEqual([settled.safetySnapshotId]);
  });

  it('answers /healthz, /readyz and /metrics with jobs by status, durations and queue depth', async () => {
    const base = `http://127.0.0.1:${worker.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^backups_jobs\{kind="restore",status="completed",node="[^"]+"\} 1$/m);
    expect(metrics).toMatch(
      /^backups_job_duration_seconds_count\{(?=[^}]*kind="restore")(?=[^}]*status="completed")[^}]*\} 1$/m,
    );
    expect(metrics).toMatch(/^backups_queue_depth\{lane="jobs",state="waiting",node="[^"]+"\} 0$/m);
  });

  it('a cancelled pending job never runs', async () => {
    await worker.stop();
    const job = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    await world.db.orm.em
      .getConnection()
      .execute(`update backup_jobs set status = 'cancelled', finished_at = now() where id = ?`, [
        job.id,
      ]);
    worker = await world.startWorker(node);
    const next = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    await world.waitForJob(next.id, ['completed', 'failed']);
    const cancelled = await world.job(job.id);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.startedAt).toBeNull();
    expect(cancelled.snapshotId).toBeNull();
  });

  it('the catalog resync finds snapshots made outside the worker and drops forgotten ones', async () => {
    const em = world.db.orm.em.fork();
    const before = await em.count(Snapshot, { customer: customer.id, source: 'manual' });
    await em.getConnection().execute(`delete from snapshots where customer_id = ?`, [customer.id]);
    // A row of a snapshot forgotten outside the worker, recorded an hour ago (a row recorded
    // after the sync's listing started is a job's new snapshot the listing could not see, and
    // is kept: catalog.ts replaceCatalog).
    await em.getConnection().execute(
      `insert into snapshots (source, snapshot_id, short_id, customer_id, time, scope, paths, tags, synced_at)
         values ('manual', repeat('a', 64), 'aaaaaaaa', ?, utc_timestamp() - interval 1 hour, 'both', '[]', '[]', utc_timestamp() - interval 1 hour)`,
      [customer.id],
    );
    const report = await worker.syncCatalog();
    expect(report.manual?.removed).toBe(1);
    const after = await em.fork().find(Snapshot, { customer: customer.id, source: 'manual' });
    expect(after).toHaveLength(before);
    expect(after.map((s) => s.snapshotId)).not.toContain('a'.repeat(64));
    expect(await em.fork().count(Snapshot, { customer: customer.id, source: 'safety' })).toBe(1);
  });

  it('a daily backup lands in the daily repository, and retention keeps the newest manual ones', async () => {
    const daily = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'daily' });
    expect(daily.status, daily.errorMessage ?? '').toBe('completed');
    const manual = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    expect(manual.status, manual.errorMessage ?? '').toBe('completed');
    await world.customerIdle(customer.id);

    const listed = async (source: 'manual' | 'daily') => {
      const r = await execa(
        'restic',
        [
          ...host.node.resticArgs,
          'snapshots',
          '--json',
          '--tag',
          `customer-${customer.id},${source}`,
        ],
        { env: world.resticEnv(source) },
      );
      return (JSON.parse(r.stdout) as { id: string }[]).map((x) => x.id).sort();
    };
    const rows = async (source: 'manual' | 'daily') =>
      (await world.db.orm.em.fork().find(Snapshot, { customer: customer.id, source }))
        .map((x) => x.snapshotId)
        .sort();
    // BACKUPS_MANUAL_KEEP=2: of the three manual backups the first is gone, from both
    expect(await listed('manual')).toHaveLength(2);
    expect(await listed('manual')).not.toContain(backupSnapshot);
    expect(await listed('manual')).toContain(manual.snapshotId);
    expect(await rows('manual')).toEqual(await listed('manual'));
    expect(await listed('daily')).toEqual([daily.snapshotId]);
    expect(await rows('daily')).toEqual([daily.snapshotId]);
  });
});
