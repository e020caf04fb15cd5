import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import type { WorkerHandle } from '../../src/worker/worker.js';
import { dropCustomerDatabases, sql } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const serverDir = path.resolve(import.meta.dirname, '../..');
const NODE = 'node-status';

interface StatusJson {
  nodes: {
    node: string;
    workerAlive: boolean;
    queues: Record<'jobs' | 'daily', { waiting: number; active: number; delayed: number }>;
    running: unknown[];
    pending: number;
    customers: number;
    staleCustomers: number;
    daily: {
      done: number[];
      failed: { customerId: number; code: string | null }[];
      running: number[];
      missing: number[];
    };
    lastDrill: unknown;
    lastRepositoryCheck: unknown;
  }[];
}

// The night's run of a node with a running worker: one customer's daily backup completed, one
// failed (its database is gone), one never had one (and is old enough to count as stale).
describe('cli status', () => {
  let world: WorkerWorld;
  let worker: WorkerHandle;
  let done: ICustomer;
  let failed: ICustomer;
  let missing: ICustomer;

  beforeAll(async () => {
    world = await createWorkerWorld();
    done = await world.customer(NODE);
    failed = await world.customer(NODE);
    missing = await world.customer(NODE);
    await sql(
      `update customers set created_at = now() - interval 3 day where id = ${missing.id}`,
      world.db.name,
    );
    worker = await world.startWorker(NODE);
    const daily = { kind: 'backup', scope: 'both', source: 'daily' } as const;
    expect((await world.runJob({ customer: done, ...daily })).status).toBe('completed');
    await dropCustomerDatabases(failed.id);
    expect((await world.runJob({ customer: failed, ...daily })).status).toBe('failed');
  }, 180_000);
  afterAll(async () => {
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

  it("shows per node the worker, the queues, and the night's done, failed and missing customers", async () => {
    const json = await cli('status', '--json');
    expect(json.exitCode, json.stderr).toBe(0);
    const [node] = (JSON.parse(json.stdout) as StatusJson).nodes;
    expect(node).toMatchObject({
      node: NODE,
      workerAlive: true,
      queues: {
        jobs: { waiting: 0, active: 0, delayed: 0 },
        daily: { waiting: 0, active: 0, delayed: 0 },
      },
      running: [],
      pending: 0,
      customers: 3,
      staleCustomers: 1,
      daily: {
        done: [done.id],
        failed: [{ customerId: failed.id, code: 'DATABASE_DUMP_FAILED' }],
        running: [],
        missing: [missing.id],
      },
      lastDrill: null,
      lastRepositoryCheck: null,
    });

    const text = await cli('status');
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(`node ${NODE}: worker alive`);
    expect(text.stdout).toContain(
      `1 done, 1 failed (${failed.id} DATABASE_DUMP_FAILED), 1 missing (customers ${missing.id})`,
    );
    expect(text.stdout).toContain('customers without a daily backup for 36 h: 1 of 3');
    expect(text.stdout).toContain('last restore drill: none yet');
  });

  it('says when the worker of a node is not running', async () => {
    await worker.stop();
    const text = await cli('status', '--node', NODE);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(`node ${NODE}: worker NOT RUNNING`);
    const json = JSON.parse((await cli('status', '--json', '--node', NODE)).stdout) as StatusJson;
    expect(json.nodes[0]?.workerAlive).toBe(false);
  });
});
