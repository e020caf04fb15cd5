// A backup's retention killed after the job was COMPLETED (found by the chaos soak: a forget
// killed after it had removed snapshots left their rows in the catalog until the hourly sync,
// so the customer was shown backups that no longer exist). A failed housekeeping now brings a
// catalog sync within seconds. Here the catalog is made stale by hand (a snapshot forgotten
// with restic itself), then the next backup's forget is SIGKILLed while it waits for a lock.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

/** SIGKILLs the processes whose command line holds `pattern` as soon as there are any. */
async function killOnceRunning(pattern: string, never: string): Promise<void> {
  const until = Date.now() + 90_000;
  for (;;) {
    const found = await execa('pgrep', ['-f', pattern], { reject: false });
    if (found.exitCode === 0) {
      for (const pid of found.stdout.split('\n').filter(Boolean))
        process.kill(Number(pid), 'SIGKILL');
      return;
    }
    if (Date.now() > until) throw new Error(never);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a housekeeping failure after COMPLETED', () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  const node = 'node-hk';

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer(node);
  });
  afterAll(async () => {
    await world?.destroy();
  });

  const catalog = async () =>
    (
      await world.db.orm.em
        .fork()
        .find(Snapshot, { customer: customer.id, source: 'manual' }, { fields: ['snapshotId'] })
    ).map((s) => s.snapshotId);

  /** The catalog once `until` holds of it, or after 30 s (the hourly sync would be far later). */
  const catalogOnce = async (until: (rows: string[]) => boolean) => {
    const by = Date.now() + 30_000;
    let rows = await catalog();
    while (!until(rows) && Date.now() < by) {
      await new Promise((r) => setTimeout(r, 250));
      rows = await catalog();
    }
    return rows;
  };

  /** restic itself on the customer's manual repository, behind the catalog's back. */
  const restic = (args: string[]) =>
    execa('restic', args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...world.resticEnv('manual') },
      extendEnv: false,
      reject: false,
    });

  it('brings the catalog in step with the repository within seconds, not at the hourly sync', async () => {
    const worker = await world.startWorker(node);
    try {
      const first = await world.runJob({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      expect(first.status).toBe('completed');
      const stale = first.snapshotId as string;
      expect(await catalog()).toContain(stale);
      // Gone from the repository behind the catalog's back.
      await world.customerIdle(customer.id);
      const forgot = await restic(['forget', '--retry-lock', '1m', stale]);
      expect(forgot.exitCode).toBe(0);
      expect(await catalog()).toContain(stale);

      // The next backup's forget waits for a lock; it is killed there.
      const release = await world.holdRepository('manual');
      let released = false;
      try {
        const second = await world.enqueue({
          customer,
          kind: 'backup',
          scope: 'database',
          source: 'manual',
        });
        await killOnceRunning(
          `forget --json --tag customer-${customer.id},manual`,
          'the backup never reached its forget',
        );
        await release();
        released = true;
        const done = await world.waitForJob(second.id, ['completed', 'failed']);
        expect(done.status).toBe('completed');
        const made = done.snapshotId as string;
        // The sync comes a few seconds after the failure; the hourly one would be far later.
        const rows = await catalogOnce((listed) => !listed.includes(stale));
        expect(rows).not.toContain(stale);
        expect(rows).toContain(made);
      } finally {
        if (!released) await release();
      }
    } finally {
      await worker.stop();
    }
  });

  it('after a failed backup, a snapshot the catalog does not know is listed within seconds (a script that could not report what restic stored)', async () => {
    const worker = await world.startWorker(node);
    const folder = await mkdtemp(path.join(tmpdir(), 'unreported-'));
    try {
      const first = await world.runJob({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      expect(first.status).toBe('completed');
      // A snapshot of the customer stored without its script's report reaching the worker (as
      // when the script's disk is full as restic answers): made with restic itself here.
      await world.customerIdle(customer.id);
      await writeFile(path.join(folder, 'customer_1.sql'), '-- a dump\n');
      const made = await restic([
        'backup',
        '--json',
        '--tag',
        `customer-${customer.id},manual,database`,
        folder,
      ]);
      expect(made.exitCode).toBe(0);
      const unreported = (
        made.stdout
          .split('\n')
          .map((line) => JSON.parse(line) as { message_type?: string; snapshot_id?: string })
          .find((line) => line.message_type === 'summary')?.snapshot_id ?? ''
      ).trim();
      expect(unreported).toMatch(/^[0-9a-f]{64}$/);
      expect(await catalog()).not.toContain(unreported);

      // The next backup fails: its restic is killed.
      const second = await world.enqueue({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      await killOnceRunning(
        `backup --json --tag customer-${customer.id},manual`,
        'the backup never ran restic',
      );
      const done = await world.waitForJob(second.id, ['completed', 'failed']);
      expect(done.status).toBe('failed');
      expect(await catalogOnce((listed) => listed.includes(unreported))).toContain(unreported);
    } finally {
      await worker.stop();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
