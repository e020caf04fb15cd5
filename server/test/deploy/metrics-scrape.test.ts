/**
 * The metrics an operator's Prometheus scrapes, from a real worker and a real api process: a
 * backup made through the api (watched over a WebSocket subscription) and a restore that fails
 * show up with their kind, status and error code; and every metric that the alert rules
 * (deploy/prometheus/alerts.yml) and the dashboard (deploy/grafana/customer-backups.json) name
 * is one the processes really export.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { projectRoot } from '../../src/config/paths.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { customerToken, snapshotHex } from '../support/factories.js';
import { freePort, sql } from '../support/sandbox.js';
import {
  type Scrape,
  type ServerProcess,
  scrape,
  startServerProcess,
} from '../support/server-process.js';
import { createWorkerWorld, type WorkerWorld } from '../worker/support/worker-env.js';

const NODE = 'metrics-node';

/** Metric names in PromQL text (`up` is Prometheus's own; histogram series map to their name). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(backups_[a-z0-9_]+)\b/g)].map((m) =>
    (m[1] ?? '').replace(/_(bucket|sum|count)$/, ''),
  );
}

describe('metrics of a running worker and api', () => {
  let world: WorkerWorld;
  let worker: ServerProcess;
  let api: ServerProcess;
  let workerUrl: string;
  let apiUrl: string;
  let customer: ICustomer;
  let token: string;

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer(NODE);
    // A customer of three days ago who never had a daily backup: stale.
    const stale = await world.customer(NODE);
    await sql(
      `update customers set created_at = now() - interval 3 day where id = ${stale.id}`,
      world.db.name,
    );
    token = await customerToken(world.db.orm.em, customer);
    const [workerPort, apiPort] = [await freePort(), await freePort()];
    const common = {
      ...world.scriptsEnv.env,
      BACKUPS_DB_NAME: world.db.name,
      BACKUPS_REDIS_PREFIX: world.prefix,
      BACKUPS_NODE: NODE,
    };
    worker = startServerProcess('worker', {
      ...common,
      BACKUPS_WORKER_PORT: String(workerPort),
      BACKUPS_DAILY_ENABLED: 'false',
      BACKUPS_SHUTDOWN_GRACE_SECONDS: '5',
    });
    api = startServerProcess('api', {
      ...common,
      BACKUPS_API_PORT: String(apiPort),
      BACKUPS_PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
    });
    workerUrl = `http://127.0.0.1:${workerPort}`;
    apiUrl = `http://127.0.0.1:${apiPort}`;
    await Promise.all([
      worker.until('ready', async () => (await fetch(`${workerUrl}/readyz`)).ok),
      api.until('ready', async () => (await fetch(`${apiUrl}/readyz`)).ok),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([worker?.stop(), api?.stop()]);
    await world?.destroy();
  });

  it('count jobs by kind, status and error code, restic runs, sockets and deliveries; and name only exported metrics', async () => {
    const before = await scrape(`${workerUrl}/metrics`);
    expect(before.value('backups_customers', { node: NODE })).toBe(2);
    expect(before.value('backups_customers_daily_backup_stale', { node: NODE })).toBe(1);
    expect(before.value('backups_daily_last_success_timestamp_seconds', { node: NODE })).toBe(0);
    expect(
      before.value('backups_filesystem_free_bytes', { filesystem: 'customers' }),
    ).toBeGreaterThan(0);

    // A customer's page: one WebSocket, one live subscription to the customer's jobs.
    const client = createClient({
      url: `${apiUrl.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    const seen: { id: string; status: string }[] = [];
    let completed: () => void = () => undefined;
    const backupDone = new Promise<void>((resolve) => {
      completed = resolve;
    });
    const stopSubscription = client.subscribe<{ customerJobs: { id: string; status: string } }>(
      { query: 'subscription { customerJobs { id status } }' },
      {
        next: (result) => {
          const job = result.data?.customerJobs;
          if (!job) return;
          seen.push(job);
          if (job.status === 'COMPLETED') completed();
        },
        error: () => undefined,
        complete: () => undefined,
      },
    );
    await api.until('the subscription is live', async () => {
      const now = await scrape(`${apiUrl}/metrics`);
      return now.value('backups_api_subscriptions', { field: 'customerJobs' }) === 1;
    });

    const created = await fetch(`${apiUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query:
          'mutation { createBackup(scope: DATABASE) { __typename ... on CreateBackupSuccess { job { id } } } }',
      }),
    });
    const body = (await created.json()) as {
      data?: { createBackup: { __typename: string; job?: { id: string } } };
    };
    expect(body.data?.createBackup.__typename).toBe('CreateBackupSuccess');
    await backupDone;
    await world.customerIdle(customer.id);

    // A restore of a snapshot the repository does not have: FAILED with its code.
    const restore = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'database',
      source: 'manual',
      snapshotId: snapshotHex(),
    });
    const failed = await world.waitForJob(restore.id, ['failed']);
    expect(failed.errorCode).toBeTruthy();

    const w = await scrape(`${workerUrl}/metrics`);
    const a = await scrape(`${apiUrl}/metrics`);
    expect(w.value('backups_jobs_finished_total', { kind: 'backup', status: 'completed' })).toBe(1);
    expect(w.value('backups_jobs_finished_total', { kind: 'restore', status: 'failed' })).toBe(1);
    expect(
      w.value('backups_jobs_failed_total', { kind: 'restore', code: String(failed.errorCode) }),
    ).toBe(1);
    expect(w.value('backups_jobs', { kind: 'backup', status: 'completed' })).toBe(1);
    expect(w.value('backups_jobs', { kind: 'restore', status: 'failed' })).toBe(1);
    expect(w.value('backups_oldest_pending_job_age_seconds', { lane: 'jobs' })).toBe(0);
    expect(w.value('backups_queue_depth', { lane: 'jobs', state: 'waiting' })).toBe(0);
    expect(
      w.value('backups_job_duration_seconds_count', { kind: 'backup', status: 'completed' }),
    ).toBe(1);
    expect(w.value('backups_restic_exits_total', { command: 'backup', code: '0' })).toBe(1);
    // Every worker series names the node; none names a customer.
    for (const sample of w.samples.filter((s) => s.name.startsWith('backups_'))) {
      expect(sample.labels.node, sample.name).toBe(NODE);
      expect(JSON.stringify(sample.labels)).not.toContain(customer.email);
      expect(Object.keys(sample.labels)).not.toContain('customer');
    }

    expect(a.value('backups_api_websocket_connections')).toBe(1);
    expect(a.value('backups_api_subscriptions', { field: 'customerJobs' })).toBe(1);
    expect(
      a.value('backups_api_graphql_operations_total', { type: 'mutation', field: 'createBackup' }),
    ).toBe(1);
    expect(
      a.value('backups_api_graphql_operations_total', {
        type: 'subscription',
        field: 'customerJobs',
      }),
    ).toBe(1);
    expect(
      a.value('backups_api_http_requests_total', { route: 'graphql', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    // The subscriber saw the backup's changes; each delivery was measured.
    const deliveries = a.value('backups_api_job_event_delivery_seconds_count', {
      feed: 'customer',
    });
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(deliveries).toBeGreaterThanOrEqual(2);

    stopSubscription();
    await client.dispose();
    await api.until('the socket is closed', async () => {
      const now = await scrape(`${apiUrl}/metrics`);
      return (
        now.value('backups_api_websocket_connections') === 0 &&
        now.value('backups_api_subscriptions', { field: 'customerJobs' }) === 0
      );
    });

    // Every metric the alert rules and the dashboard read is exported by one of them.
    const exported = (name: string, scrapes: Scrape[]) => scrapes.some((s) => s.names.has(name));
    const rules = await readFile(path.join(projectRoot, 'deploy/prometheus/alerts.yml'), 'utf8');
    const exprs = [...rules.matchAll(/expr: (\|\n(?:\s{10}.*\n)+|.*)/g)].map((m) => m[1] ?? '');
    const dashboard = JSON.parse(
      await readFile(path.join(projectRoot, 'deploy/grafana/customer-backups.json'), 'utf8'),
    ) as { panels: { targets?: { expr: string }[] }[] };
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(12);
    expect(queries.length).toBeGreaterThanOrEqual(20);
    const named = new Set([...exprs, ...queries].flatMap(metricNames));
    expect(named.size).toBeGreaterThanOrEqual(15);
    const missing = [...named].filter((name) => !exported(name, [w, a]));
    expect(missing).toEqual([]);
  }, 180_000);
});
