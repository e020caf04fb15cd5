import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

describe('stopping the worker and jobs that take too long', () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  let snapshotId: string;
  const node = 'node-s';

  const indexFile = () =>
    path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`, 'wordpress/index.php');

  async function waitForPhase(jobId: number, phases: string[]): Promise<void> {
    const until = Date.now() + 60_000;
    for (;;) {
      const row = await world.job(jobId);
      if (row.phase && phases.includes(row.phase)) return;
      if (row.status !== 'pending' && row.status !== 'running')
        throw new Error(`ended: ${row.status}`);
      if (Date.now() > until) throw new Error(`never reached ${phases.join('/')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer(node);
    const worker = await world.startWorker(node);
    const made = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'manual' });
    snapshotId = made.snapshotId ?? '';
    await worker.stop();
    await writeFile(indexFile(), 'changed after the backup');
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it('stopping the worker (SIGTERM) during a restore: past the grace period the restore rolls back and the job goes back to PENDING, then runs on the next start', async () => {
    const worker = await world.startWorker(node, { BACKUPS_SHUTDOWN_GRACE_SECONDS: '1' });
    const job = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId,
    });
    await waitForPhase(job.id, ['SAFETY_SNAPSHOT', 'DOWNLOADING']);
    await worker.stop();

    const handedBack = await world.job(job.id);
    expect(handedBack.status).toBe('pending');
    expect(handedBack.startedAt).toBeNull();
    expect(await readFile(indexFile(), 'utf8')).toBe('changed after the backup');
    expect(existsSync(path.join(path.dirname(path.dirname(indexFile())), '.maintenance'))).toBe(
      false,
    );

    const next = await world.startWorker(node);
    const done = await world.waitForJob(job.id, ['completed', 'failed']);
    expect(done.errorMessage).toBeNull();
    expect(done.status).toBe('completed');
    expect(await readFile(indexFile(), 'utf8')).toContain('wp-blog-header');
    await next.stop();
    await writeFile(indexFile(), 'changed after the backup');
  });

  it('a restore past its time limit is stopped, rolled back and FAILED with a reason', async () => {
    const worker = await world.startWorker(node, { BACKUPS_RESTORE_TIMEOUT_SECONDS: '2' });
    const done = await world.runJob({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId,
    });
    expect(done.status).toBe('failed');
    expect(done.errorCode).toBe('TIMED_OUT');
    expect(done.errorMessage).toMatch(/longer than allowed/);
    expect(await readFile(indexFile(), 'utf8')).toBe('changed after the backup');
    expect(existsSync(path.join(path.dirname(path.dirname(indexFile())), '.maintenance'))).toBe(
      false,
    );
    await worker.stop();
  });
});
