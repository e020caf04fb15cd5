import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoSite } from '../../src/customers/demo-site.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

describe('the snapshot catalog and retention', () => {
  let world: WorkerWorld;
  beforeAll(async () => {
    world = await createWorkerWorld();
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it("a legacy daily snapshot of many customers' folders gives one catalog row per customer of the node", async () => {
    const a = await world.customer('node-l');
    const b = await world.customer('node-l');
    const elsewhere = await world.customer('node-other');
    const legacy = path.join(world.scriptsEnv.dataDir, 'legacy');
    const customers = path.join(legacy, 'var/customers');
    const dumps = path.join(legacy, 'shophosting-db-dumps');
    await mkdir(dumps, { recursive: true });
    for (const c of [a, b, elsewhere]) {
      await createDemoSite(customers, c.id, 'volumes/files');
      await writeFile(path.join(dumps, `customer_${c.id}.sql`), '-- dump\n');
    }
    const r = await execa('restic', ['backup', '--json', '--tag', 'daily', customers, dumps], {
      env: world.resticEnv('daily'),
    });
    const legacyId = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}').snapshot_id as string;

    const worker = await world.startWorker('node-l');
    const rows = await world.db.orm.em
      .fork()
      .find(Snapshot, { snapshotId: legacyId }, { orderBy: { customer: 'asc' } });
    expect(rows.map((row) => row.customer.id)).toEqual([a.id, b.id].sort((x, y) => x - y));
    expect(rows.every((row) => row.source === 'daily' && row.scope === 'both')).toBe(true);

    // a second sync changes nothing
    const report = await worker.syncCatalog();
    expect(report.daily).toEqual({ added: 0, removed: 0 });
    await worker.stop();
  });

  it('retention blocked by a busy repository is deferred, the backup still completes, and the worker applies it later', async () => {
    const customer = await world.customer('node-k');
    const worker = await world.startWorker('node-k');
    for (let i = 0; i < 5; i++) {
      const job = await world.enqueue({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      expect((await world.waitForJob(job.id, ['completed', 'failed'])).status).toBe('completed');
    }
    // the last job's housekeeping (its retention) has ended
    await world.customerIdle(customer.id);
    // another restic process holds a lock: the next backup cannot forget its oldest snapshot
    const release = await world.holdRepository('manual');
    const sixth = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    const done = await world.waitForJob(sixth.id, ['completed', 'failed']);
    expect(done.errorMessage).toBeNull();
    expect(done.status).toBe('completed');
    // The job is COMPLETED once its snapshot exists; its retention (housekeeping) then waits
    // for the lock (BACKUPS_RESTIC_RETRY_LOCK) and is handed to the worker.
    const until = Date.now() + 60_000;
    while (worker.retention.size === 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    const em = () => world.db.orm.em.fork();
    expect(await em().count(Snapshot, { customer: customer.id, source: 'manual' })).toBe(6);
    expect(worker.retention.size).toBe(1);
    expect((await world.job(sixth.id)).status).toBe('completed');

    await release();
    await worker.retention.drain();
    expect(worker.retention.size).toBe(0);
    const kept = await em().find(Snapshot, { customer: customer.id, source: 'manual' });
    expect(kept).toHaveLength(5);
    expect(kept.map((s) => s.snapshotId)).toContain(done.snapshotId);
    const report = await worker.syncCatalog();
    expect(report.manual).toEqual({ added: 0, removed: 0 });
    await worker.stop();
  });
});
