import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

// The scripts give up waiting for a customer's lock after 3 s here (600 s in production).
const LOCK_WAIT_SECONDS = 3;

describe("a customer's jobs on one node run one after the other", () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  const node = 'node-o';

  beforeAll(async () => {
    world = await createWorkerWorld({ BACKUPS_LOCK_WAIT_SECONDS: String(LOCK_WAIT_SECONDS) });
    customer = await world.customer(node);
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it("the next job waits for a restore's housekeeping, longer than the scripts' lock wait, and completes", async () => {
    const worker = await world.startWorker(node);
    const made = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'manual' });
    expect(made.status).toBe('completed');
    await world.customerIdle(customer.id);
    const site = path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);
    await writeFile(path.join(site, 'wordpress/index.php'), 'changed after the backup');
    const { restore: done, release } = await world.restoreWithHousekeepingHeld(
      customer,
      String(made.snapshotId),
    );
    let released = false;
    try {
      expect(done.errorMessage).toBeNull();
      expect(done.status).toBe('completed');
      // its script is still at the housekeeping, under the customer's lock
      expect(await world.customerLocked(customer.id)).toBe(true);
      const next = await world.enqueue({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      // Twice the scripts' lock wait: the next job is still waiting, not failed.
      await new Promise((r) => setTimeout(r, 2 * LOCK_WAIT_SECONDS * 1000));
      const waiting = await world.job(next.id);
      expect(waiting.errorMessage).toBeNull();
      expect(['pending', 'running']).toContain(waiting.status);
      expect(await world.customerLocked(customer.id)).toBe(true);

      await release();
      released = true;
      const after = await world.waitForJob(next.id, ['completed', 'failed']);
      expect(after.errorMessage).toBeNull();
      expect(after.status).toBe('completed');
      expect(after.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      if (!released) await release();
      await worker.stop();
    }
  });
});
