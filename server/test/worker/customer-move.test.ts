import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEvent } from '../../src/audit/audit-event.entity.js';
import { Customer, type ICustomer } from '../../src/customers/customer.entity.js';
import { producerQueue, type QueueLane } from '../../src/jobs/job-queue.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { REDIS_URL } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const serverDir = path.resolve(import.meta.dirname, '../..');

describe('customer:move: a customer to another hosting node', () => {
  let world: WorkerWorld;
  const queues: ReturnType<typeof producerQueue>[] = [];
  beforeAll(async () => {
    world = await createWorkerWorld({ BACKUPS_RESTIC_RETRY_LOCK: '2m' });
  });
  afterAll(async () => {
    for (const q of queues) await q.close(1000).catch(() => undefined);
    await world?.destroy();
  });

  const cli = (...args: string[]) =>
    execa('node', ['--import', 'tsx', 'src/main/cli.ts', ...args], {
      cwd: serverDir,
      env: {
        ...world.scriptsEnv.env,
        BACKUPS_DB_NAME: world.db.name,
        BACKUPS_REDIS_PREFIX: world.prefix,
      },
      extendEnv: false,
      reject: false,
    });
  const queue = (node: string, lane: QueueLane) => {
    const q = producerQueue({ redisUrl: REDIS_URL, prefix: world.prefix }, node, lane);
    queues.push(q);
    return q;
  };
  // a queue of its own each time: a queue remembers the entries it created (storeJobs)
  const queued = async (node: string, lane: QueueLane, entry: number | string) =>
    (await queue(node, lane).getJob(String(entry))) !== null;
  const hostOf = async (customer: ICustomer) =>
    (await world.db.orm.em.fork().findOneOrFail(Customer, customer.id)).host;
  const moves = (customer: ICustomer) =>
    world.db.orm.em.fork().count(AuditEvent, { action: 'customer_moved', customerId: customer.id });

  it("moves a pending job to the new node's queue; the old node's worker leaves it, the new one runs it, the catalog follows", async () => {
    const customer = await world.customer('move-old');
    // a customer of the new node: the node is known
    await world.customer('move-new');
    const oldWorker = await world.startWorker('move-old');
    const first = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    expect(first.status, first.errorMessage ?? '').toBe('completed');
    await oldWorker.stop();
    await world.customerIdle(customer.id);
    const manual = await world.db.orm.em
      .fork()
      .find(Snapshot, { customer: customer.id, source: 'manual' });
    expect(manual).toHaveLength(1);

    // the night's backup waits in the old node's daily lane while its worker is down
    const pending = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'daily',
    });
    expect(await queued('move-old', 'daily', pending.id)).toBe(true);

    const moved = await cli('customer:move', '--customer', String(customer.id), '--to', 'move-new');
    expect(moved.exitCode, moved.stderr).toBe(0);
    expect(moved.stdout).toContain(`customer ${customer.id} moved from move-old to move-new`);
    expect(moved.stdout).toContain(`pending jobs now queued on move-new: ${pending.id} (backup)`);
    expect(moved.stdout).toContain('the worker of move-new is not running');
    // this world's repositories are local folders: the command says they cannot follow
    expect(moved.stdout).toMatch(
      /manual: \/\S+ is a folder on each node: its snapshots cannot follow/,
    );
    expect(await hostOf(customer)).toBe('move-new');
    expect(await queued('move-old', 'daily', pending.id)).toBe(false);
    expect(await queued('move-new', 'daily', pending.id)).toBe(true);
    const audit = await world.db.orm.em
      .fork()
      .findOneOrFail(AuditEvent, { action: 'customer_moved', customerId: customer.id });
    expect(audit).toMatchObject({ actorKind: 'operator', targetId: 'move-new' });
    expect(audit.details).toEqual({ from: 'move-old', to: 'move-new', jobs: [pending.id] });

    // A stale entry on the old node's queue (e.g. a drill's later run): its worker skips it.
    const stale = queue('move-old', 'daily');
    await stale.createJob({ jobId: pending.id }).setId(`${pending.id}:stale`).save();
    const oldAgain = await world.startWorker('move-old');
    let newWorker: Awaited<ReturnType<WorkerWorld['startWorker']>> | undefined;
    try {
      const until = Date.now() + 20_000;
      while (await queued('move-old', 'daily', `${pending.id}:stale`)) {
        if (Date.now() > until) throw new Error('the old worker never took its stale entry');
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(await world.job(pending.id)).toMatchObject({ status: 'pending', startedAt: null });

      newWorker = await world.startWorker('move-new');
      const done = await world.waitForJob(pending.id, ['completed', 'failed']);
      expect(done.status, done.errorMessage ?? '').toBe('completed');
      await world.customerIdle(customer.id);
      // The catalog as the new node sees its repositories (here one folder for both nodes):
      // the old manual snapshot is still listed, beside the daily one the new node made.
      await newWorker.syncCatalog();
      const em = world.db.orm.em.fork();
      expect(
        (await em.find(Snapshot, { customer: customer.id, source: 'manual' })).map(
          (s) => s.snapshotId,
        ),
      ).toEqual(manual.map((s) => s.snapshotId));
      expect(await em.count(Snapshot, { customer: customer.id, source: 'daily' })).toBe(1);
    } finally {
      await oldAgain.stop();
      await newWorker?.stop();
    }
  });

  it('is refused while a job of the customer runs or its script is still finishing, and done once it has ended', async () => {
    const customer = await world.customer('move-old');
    const job = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    // taken by the old node's worker (claimed as it claims), not finished
    expect(await world.store.claim(job.id, 'move-old')).not.toBeNull();
    const running = await cli(
      'customer:move',
      '--customer',
      String(customer.id),
      '--to',
      'move-new',
    );
    expect(running.exitCode).toBe(1);
    expect(running.stderr).toContain(`job ${job.id} (backup) is running`);
    expect(running.stderr).toContain('nothing was changed');
    expect(await hostOf(customer)).toBe('move-old');

    const ref = { id: job.id, customerId: customer.id };
    await world.store.complete(ref);
    const finishing = await cli(
      'customer:move',
      '--customer',
      String(customer.id),
      '--to',
      'move-new',
    );
    expect(finishing.exitCode).toBe(1);
    expect(finishing.stderr).toMatch(
      /is completed and its script is still finishing on node move-old/,
    );
    expect(await hostOf(customer)).toBe('move-old');
    expect(await moves(customer)).toBe(0);

    await world.store.settle(ref);
    const ok = await cli('customer:move', '--customer', String(customer.id), '--to', 'move-new');
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('no pending jobs');
    expect(await hostOf(customer)).toBe('move-new');
  });

  it('refuses an unknown node, an unknown customer, the same node and a bad node name, changing nothing', async () => {
    const customer = await world.customer('move-old');
    const pending = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'files',
      source: 'manual',
    });
    const cases: [string[], RegExp][] = [
      [['--customer', String(customer.id), '--to', 'move-nowhere'], /unknown node move-nowhere/],
      [['--customer', '999999999', '--to', 'move-new'], /there is no customer 999999999/],
      [['--customer', String(customer.id), '--to', 'move-old'], /already on node move-old/],
      [['--customer', String(customer.id), '--to', 'Bad Node'], /"Bad Node" is not a node name/],
      [['--customer', 'abc', '--to', 'move-new'], /positive whole number/],
      [['--customer', String(customer.id)], /--to/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('customer:move', ...args);
      expect(r.exitCode, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    expect(await hostOf(customer)).toBe('move-old');
    expect(await world.job(pending.id)).toMatchObject({ status: 'pending' });
    expect(await queued('move-old', 'jobs', pending.id)).toBe(true);
    expect(await queued('move-new', 'jobs', pending.id)).toBe(false);
    expect(await moves(customer)).toBe(0);
  });
});
