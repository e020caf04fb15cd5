import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { WebhookMessage } from '../../src/webhooks/webhook.entity.js';
import type { WorkerHandle } from '../../src/worker/worker.js';
import { startTestApi, type TestApi } from '../api/support/test-api.js';
import { buildCustomer, buildJob, customerToken } from '../support/factories.js';
import { freePort } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from '../worker/support/worker-env.js';
import { LOOPBACK_HOOKS as HOOKS, type Receiver, startReceiver } from './support/receiver.js';

const KEY = HOOKS.BACKUPS_WEBHOOK_KEY;

const CREATE = `mutation($url: String!, $events: [String!]!) {
  createWebhook(url: $url, events: $events) {
    __typename
    ... on CreateWebhookSuccess { secret webhook { id } }
    ... on Error { code message }
  }
}`;

const LOG = `query {
  me { webhooks { id deliveries { deliveries {
    id event status attempt statusCode nextRetryAt
    attempts { attempt statusCode error attemptedAt }
  } } } }
}`;

describe('webhooks: the worker delivers signed events', () => {
  let world: WorkerWorld;
  let worker: WorkerHandle;
  let api: TestApi;
  const node = 'node-hooks';
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    world = await createWorkerWorld();
    worker = await world.startWorker(node, HOOKS);
    api = await startTestApi({
      db: world.db,
      prefix: world.prefix,
      config: {
        BACKUPS_WEBHOOK_KEY: KEY,
        BACKUPS_WEBHOOK_ALLOW_HTTP: true,
        BACKUPS_WEBHOOK_ALLOW_ADDRESSES: '127.0.0.0/8',
        BACKUPS_DOWNLOAD_KEY_FILE: path.join(world.scriptsEnv.dataDir, 'download-link.key'),
      },
    });
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await api?.stop();
    await world?.destroy();
  });

  async function hook(token: string, receiver: Receiver | string, events: string[]) {
    const url = typeof receiver === 'string' ? receiver : receiver.url;
    const result = await api.gql(CREATE, { url, events }, { token });
    const created = result.data?.createWebhook;
    expect(created?.__typename, JSON.stringify(result)).toBe('CreateWebhookSuccess');
    if (typeof receiver !== 'string') receiver.secret = created.secret;
    return { id: String(created.webhook.id), secret: String(created.secret) };
  }

  async function receiver(options: Parameters<typeof startReceiver>[0] = {}) {
    const started = await startReceiver(options);
    receivers.push(started);
    return started;
  }

  /** A job.started event recorded by a store that queues nothing: only the sweep finds it. */
  async function startedWithoutQueue(customer: ICustomer): Promise<number> {
    const job = await buildJob(world.db.orm.em, customer, { status: 'pending' });
    expect(await world.store.claim(job.id)).not.toBeNull();
    return job.id;
  }

  async function message(webhookId: string) {
    return world.db.orm.em.fork().findOneOrFail(WebhookMessage, { webhook: Number(webhookId) });
  }

  async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const value = await read();
      if (ok(value)) return value;
      if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(value)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('a backup, then a restore of it, end: the receiver gets job.completed of each exactly once, signed; another customer hears nothing', async () => {
    const customer = await world.customer(node);
    const token = await customerToken(world.db.orm.em, customer);
    const mine = await receiver();
    await hook(token, mine, ['job.started', 'job.completed']);
    const other = await buildCustomer(world.db.orm.em, { host: node });
    const theirs = await receiver();
    await hook(await customerToken(world.db.orm.em, other), theirs, ['job.completed']);

    const created = await api.gql(
      'mutation { createBackup(scope: DATABASE) { ... on CreateBackupSuccess { job { id } } } }',
      {},
      { token },
    );
    const jobId = Number(created.data?.createBackup?.job?.id);
    const done = await world.waitForJob(jobId, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    const restoring = await api.gql(
      `mutation($id: ID!) { restoreSnapshot(snapshotId: $id, scope: DATABASE, confirmation: "RESTORE") {
        __typename ... on RestoreSnapshotSuccess { job { id } } ... on Error { message } } }`,
      { id: done.snapshotId },
      { token },
    );
    const restoreId = Number(restoring.data?.restoreSnapshot?.job?.id);
    expect(restoreId, JSON.stringify(restoring)).toBeGreaterThan(0);
    const restored = await world.waitForJob(restoreId, ['completed', 'failed']);
    expect(restored.status, restored.errorMessage ?? '').toBe('completed');
    await mine.waitFor(4);
    // Nothing is due any more, and a sweep queues nothing again.
    expect(await worker.webhooks.sweep()).toBe(0);

    expect(mine.received.map((r) => r.problem)).toEqual([null, null, null, null]);
    const of = (type: string, id: number) =>
      mine.received.filter(
        (r) => r.verified?.type === type && r.verified.data.job.id === String(id),
      );
    for (const id of [jobId, restoreId]) {
      expect(of('job.started', id)).toHaveLength(1);
      expect(of('job.completed', id)).toHaveLength(1);
    }
    const completed = of('job.completed', jobId);
    const job = completed[0]?.verified?.data.job;
    expect(job).toMatchObject({
      id: String(jobId),
      customerId: String(customer.id),
      kind: 'BACKUP',
      scope: 'DATABASE',
      status: 'COMPLETED',
      snapshotId: done.snapshotId,
      errorCode: null,
    });
    expect(of('job.completed', restoreId)[0]?.verified?.data.job).toMatchObject({
      kind: 'RESTORE',
      status: 'COMPLETED',
      snapshotId: done.snapshotId,
    });
    expect(Object.keys(job ?? {})).not.toContain('errorDetail');
    expect(completed[0]?.headers['webhook-id']).toMatch(/^msg_\d+$/);
    expect(mine.received[0]?.body).not.toContain(mine.secret ?? 'no secret');
    expect(theirs.received).toHaveLength(0);

    const log = await api.gql(LOG, {}, { token });
    const deliveries = log.data?.me?.webhooks?.[0]?.deliveries?.deliveries;
    expect(deliveries.map((d: { event: string }) => d.event).sort()).toEqual([
      'job.completed',
      'job.completed',
      'job.started',
      'job.started',
    ]);
    for (const d of deliveries) {
      expect(d).toMatchObject({
        status: 'DELIVERED',
        attempt: 1,
        statusCode: 200,
        nextRetryAt: null,
      });
    }
  });

  it('a download is built: download.ready arrives once, signed, naming the archive the job shows', async () => {
    const customer = await world.customer(node);
    const token = await customerToken(world.db.orm.em, customer);
    const backup = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
    });
    expect(backup.status).toBe('completed');
    const mine = await receiver();
    await hook(token, mine, ['download.ready']);
    const asked = await api.gql(
      `mutation($id: ID!) { createDownload(snapshotId: $id, paths: [], database: true, format: TAR_GZ) {
        __typename ... on CreateDownloadSuccess { job { id } } ... on Error { message } } }`,
      { id: backup.snapshotId },
      { token },
    );
    const jobId = Number(asked.data?.createDownload?.job?.id);
    expect(jobId, JSON.stringify(asked)).toBeGreaterThan(0);
    const done = await world.waitForJob(jobId, ['completed', 'failed']);
    expect(done.status, done.errorMessage ?? '').toBe('completed');
    await mine.waitFor(1);
    expect(await worker.webhooks.sweep()).toBe(0);
    expect(mine.received).toHaveLength(1);
    const [event] = mine.received;
    expect(event?.problem).toBeNull();
    expect(event?.verified?.type).toBe('download.ready');
    const shown = await api.gql(
      'query($id: ID!) { job(id: $id) { download { sizeBytes sha256 format expiresAt } } }',
      { id: String(jobId) },
      { token },
    );
    const download = shown.data?.job?.download;
    expect(event?.verified?.data.job).toMatchObject({ id: String(jobId), status: 'COMPLETED' });
    expect(event?.verified?.data.download).toMatchObject({
      format: 'TAR_GZ',
      sizeBytes: download.sizeBytes,
      sha256: download.sha256,
      expiresAt: download.expiresAt,
    });
    // The link is the api's to show: a receiver never gets the token.
    expect(event?.body).not.toContain('/downloads/');
  });

  it('the receiver is down for three attempts, then up: delivered on the fourth, the log shows all four; redelivered on request', async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node });
    const token = await customerToken(world.db.orm.em, customer);
    const port = await freePort();
    const { id, secret } = await hook(token, `http://127.0.0.1:${port}/in`, ['job.started']);
    const jobId = await startedWithoutQueue(customer);
    // Three refused connections; the fourth attempt is 3 s after the third.
    await until(
      () => message(id),
      (m) => m.attempts === 3,
    );
    const up = await receiver({ port });
    up.secret = secret;
    await up.waitFor(1);
    await until(
      () => message(id),
      (m) => m.status === 'delivered',
    );

    expect(up.received).toHaveLength(1);
    expect(up.received[0]?.problem).toBeNull();
    expect(up.received[0]?.verified?.data.job.id).toBe(String(jobId));
    const log = await api.gql(LOG, {}, { token });
    const [delivery] = log.data?.me?.webhooks?.[0]?.deliveries?.deliveries ?? [];
    expect(delivery).toMatchObject({ event: 'job.started', status: 'DELIVERED', attempt: 4 });
    const attempts = delivery.attempts as {
      attempt: number;
      statusCode: number | null;
      error: string | null;
      attemptedAt: string;
    }[];
    expect(attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, null],
      [2, null],
      [3, null],
      [4, 200],
    ]);
    expect(attempts.slice(0, 3).map((a) => a.error)).toEqual(Array(3).fill('ECONNREFUSED'));
    const times = attempts.map((a) => Date.parse(a.attemptedAt));
    expect((times[3] ?? 0) - (times[2] ?? 0)).toBeGreaterThanOrEqual(2_900);

    const again = await api.gql(
      'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) }',
      { id: delivery.id },
      { token },
    );
    expect(again.data?.redeliverWebhook).toBe(true);
    await up.waitFor(2);
    expect(up.received[1]?.problem).toBeNull();
    expect(up.received[1]?.headers['webhook-id']).toBe(up.received[0]?.headers['webhook-id']);
    const row = await until(
      () => message(id),
      (m) => m.status === 'delivered' && m.attempts === 5,
    );
    expect(row.lastStatusCode).toBe(200);
  });

  it('a redirect is not followed: the attempt fails with its 3xx, the target is never asked', async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node });
    const token = await customerToken(world.db.orm.em, customer);
    const inside = await receiver();
    const redirecting = await receiver({ answer: () => [302, inside.url] });
    const { id } = await hook(token, redirecting, ['job.started']);
    await startedWithoutQueue(customer);
    await redirecting.waitFor(1);
    const row = await until(
      () => message(id),
      (m) => m.attempts >= 1,
    );
    expect(row.status).toBe('pending');
    expect(row.lastStatusCode).toBe(302);
    const log = await api.gql(LOG, {}, { token });
    const [delivery] = log.data?.me?.webhooks?.[0]?.deliveries?.deliveries ?? [];
    expect(delivery.attempts[0]).toMatchObject({ statusCode: 302, error: 'redirect not followed' });
    expect(inside.received).toHaveLength(0);
    // No more retries for this test's hook.
    await api.gql('mutation($id: ID!) { deleteWebhook(id: $id) }', { id }, { token });
  });
});
