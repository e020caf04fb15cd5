import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { ScriptRunner } from '../../src/executors/script-runner.js';
import { createLogger } from '../../src/infra/logger.js';
import { runMaintenance } from '../../src/maintainer/maintenance.js';
import { listSnapshots } from '../../src/snapshots/catalog-read.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import type { WorkerHandle } from '../../src/worker/worker.js';
import { type RepositoryHost, repositoryHost } from '../support/repository-servers.js';
import { SCRIPTS_DIR } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

// The node's rest-server credentials are append-only: its worker keeps every snapshot, the
// customer is still shown only what they are promised, and the maintainer (full rights, on
// the same data) applies the retention and brings the catalog in step.
describe('append-only nodes and the maintainer', () => {
  let host: RepositoryHost;
  let world: WorkerWorld;
  let customer: ICustomer;
  let worker: WorkerHandle;
  const node = 'node-m';
  const made: string[] = [];

  const repositoryIds = async () => {
    const r = await execa(
      'restic',
      ['snapshots', '--json', '--tag', `customer-${customer.id},manual`],
      {
        env: host.maintainer.resticEnv('manual'),
      },
    );
    return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id).sort();
  };

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'maintainer-'));
    host = await repositoryHost('rest', dir, { appendOnly: true });
    world = await createWorkerWorld({}, { dir, repositories: host.node });
    customer = await world.customer(node);
    worker = await world.startWorker(node);
    for (let i = 0; i < 6; i++) {
      const done = await world.runJob({
        customer,
        kind: 'backup',
        scope: 'database',
        source: 'manual',
      });
      expect(done.status, done.errorMessage ?? '').toBe('completed');
      made.push(done.snapshotId ?? '');
      await world.customerIdle(customer.id);
    }
  });
  afterAll(async () => {
    await world?.destroy();
    await host?.destroy();
  });

  it('the worker forgets nothing, and the customer is shown their newest 5 manual backups', async () => {
    expect(await repositoryIds()).toEqual([...made].sort());
    const em = world.db.orm.em.fork();
    expect(await em.count(Snapshot, { customer: customer.id, source: 'manual' })).toBe(6);
    const shown = await listSnapshots(em, customer.id, 'manual');
    expect(shown.map((s) => s.snapshotId)).toEqual(made.slice(1).reverse());
  });

  it('the maintainer applies the retention with its full-rights credentials and updates the catalog', async () => {
    const scripts = new ScriptRunner({
      scriptsDir: SCRIPTS_DIR,
      prefix: '',
      env: { ...world.scriptsEnv.env, ...host.maintainer.env },
      logger: createLogger('maintainer-test', 'warn'),
    });
    const report = await runMaintenance(
      { orm: world.db.orm, scripts, logger: createLogger('maintainer-test', 'warn') },
      { prune: true, check: true },
    );
    expect(report.failed).toEqual([]);
    expect(report.removed.manual).toBe(1);
    expect(report.pruned).toEqual(['manual', 'daily']);
    expect(report.checked).toEqual([
      { source: 'manual', ok: true },
      { source: 'daily', ok: true },
    ]);
    const kept = made.slice(1);
    expect(await repositoryIds()).toEqual([...kept].sort());
    const rows = await world.db.orm.em
      .fork()
      .find(Snapshot, { customer: customer.id, source: 'manual' });
    expect(rows.map((r) => r.snapshotId).sort()).toEqual([...kept].sort());
    // the worker's own resync from the repository agrees with the maintainer's catalog
    expect((await worker.syncCatalog()).manual).toEqual({ added: 0, removed: 0 });
  });
});
