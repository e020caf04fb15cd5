import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

describe('queues per hosting node, and many customers at once', () => {
  let world: WorkerWorld;
  beforeAll(async () => {
    // 20 customers share one repository: a backup may wait for another's retention (forget
    // locks exclusively). The tests' 10 s lock wait ran out on a busy machine; production's is 2 min.
    world = await createWorkerWorld({ BACKUPS_RESTIC_RETRY_LOCK: '2m' });
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it('two workers for two nodes each take only their own customers’ jobs', async () => {
    const onA = await world.customer('node-a');
    const onB = await world.customer('node-b');
    const workerA = await world.startWorker('node-a');
    const jobA = await world.enqueue({
      customer: onA,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    const jobB = await world.enqueue({
      customer: onB,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    expect((await world.waitForJob(jobA.id, ['completed', 'failed'])).status).toBe('completed');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await world.job(jobB.id)).status).toBe('pending');

    const workerB = await world.startWorker('node-b');
    expect((await world.waitForJob(jobB.id, ['completed', 'failed'])).status).toBe('completed');
    await workerA.stop();
    await workerB.stop();
  });

  it('20 customers’ backups at once with concurrency 2 all complete, and retention keeps 5 each', async () => {
    const customers = await Promise.all(Array.from({ length: 20 }, () => world.customer('node-c')));
    const worker = await world.startWorker('node-c', { BACKUPS_WORKER_CONCURRENCY: '2' });
    const jobs = await Promise.all(
      customers.map((customer) =>
        world.enqueue({ customer, kind: 'backup', scope: 'database', source: 'manual' }),
      ),
    );
    for (const job of jobs) {
      const done = await world.waitForJob(job.id, ['completed', 'failed'], 300_000);
      expect(done.errorMessage).toBeNull();
      expect(done.status).toBe('completed');
    }
    // never more than two at once: no two jobs' running intervals overlap by three
    const rows = await world.db.orm.em
      .fork()
      .find(BackupJob, { id: { $in: jobs.map((j) => j.id) } });
    for (const row of rows) {
      const start = row.startedAt;
      if (!start) throw new Error(`job ${row.id} never started`);
      const overlapping = rows.filter(
        (other) =>
          other.startedAt &&
          other.finishedAt &&
          other.startedAt <= start &&
          other.finishedAt > start,
      );
      expect(overlapping.length).toBeLessThanOrEqual(2);
    }
    // one customer makes six more backups: the newest five stay, everyone else's are untouched
    const [first] = customers;
    if (!first) throw new Error('no customer');
    for (let i = 0; i < 6; i++) {
      const job = await world.enqueue({
        customer: first,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      expect((await world.waitForJob(job.id, ['completed', 'failed'])).status).toBe('completed');
    }
    const em = world.db.orm.em.fork();
    // The last job is COMPLETED once its snapshot exists; its retention follows as
    // housekeeping, before the worker takes that customer's next job.
    const until = Date.now() + 60_000;
    while (
      (await em.fork().count(Snapshot, { customer: first.id, source: 'manual' })) > 5 &&
      Date.now() < until
    )
      await new Promise((r) => setTimeout(r, 100));
    const mine = await em.find(
      Snapshot,
      { customer: first.id, source: 'manual' },
      { orderBy: { time: 'desc' } },
    );
    expect(mine).toHaveLength(5);
    for (const other of customers.slice(1)) {
      expect(await em.count(Snapshot, { customer: other.id, source: 'manual' })).toBe(1);
    }
    const report = await worker.syncCatalog();
    expect(report.manual?.removed).toBe(0);
    expect(report.manual?.added).toBe(0);
    await worker.stop();
  });
});
