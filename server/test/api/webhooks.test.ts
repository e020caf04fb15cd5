import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { recordJobEvent } from '../../src/webhooks/webhook-outbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { adminToken, buildCustomer, buildJob, customerToken } from './support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const CREATE = `mutation($url: String!, $events: [String!]!, $customerId: ID) {
  createWebhook(url: $url, events: $events, customerId: $customerId) {
    __typename
    ... on CreateWebhookSuccess { secret webhook { id url events customerId } }
    ... on InvalidInputError { field }
    ... on Error { code message }
  }
}`;
const MINE = `query { me { webhooks { id url deliveries { deliveries { id event } } } } }`;
const PUBLIC = 'https://93.184.216.34/hooks';

describe('webhooks through the api: bad targets refused, each customer sees only their own', () => {
  let db: TestDatabase;
  let api: TestApi;
  let admin: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({
      db,
      config: {
        BACKUPS_WEBHOOK_KEY: randomBytes(32).toString('hex'),
        BACKUPS_WEBHOOK_LIMIT_PER_CUSTOMER: 3,
        BACKUPS_JOB_LIMIT_PER_CUSTOMER: 1000,
      },
    });
    admin = await adminToken(db.orm.em);
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  const hookCount = async (customer: ICustomer | null) =>
    Number(
      (
        await db.orm.em
          .getConnection()
          .execute<{ n: number }[]>(
            customer
              ? 'select count(*) as n from webhooks where customer_id = ?'
              : 'select count(*) as n from webhooks where customer_id is null',
            customer ? [customer.id] : [],
          )
      )[0]?.n,
    );

  async function customerWithToken(): Promise<[ICustomer, string]> {
    const customer = await buildCustomer(db.orm.em, { host: 'node-a' });
    return [customer, await customerToken(db.orm.em, customer)];
  }

  it.each([
    ['https://127.0.0.1/hook', 'url', /127\.0\.0\.1 is not reachable/],
    ['https://10.0.0.1/hook', 'url', /10\.0\.0\.1 is not reachable/],
    ['https://169.254.169.254/latest/meta-data', 'url', /169\.254\.169\.254 is not reachable/],
    ['https://[::1]/hook', 'url', /not reachable/],
    ['https://[::ffff:127.0.0.1]/hook', 'url', /not reachable/],
    ['https://localhost/hook', 'url', /localhost resolves to (127\.0\.0\.1|::1)/],
    ['http://93.184.216.34/hook', 'url', /Only https/],
    ['javascript:alert(1)', 'url', /Only https/],
    [`https://93.184.216.34/${'x'.repeat(2100)}`, 'url', /longer than 2000/],
  ])('refuses the URL %s, stores nothing', async (url, field, message) => {
    const [customer, token] = await customerWithToken();
    const result = await api.gql(CREATE, { url, events: ['job.completed'] }, { token });
    expect(result.data?.createWebhook).toMatchObject({ code: 'INVALID_INPUT', field });
    expect(result.data?.createWebhook.message).toMatch(message);
    expect(await hookCount(customer)).toBe(0);
  });

  it.each([
    [['job.exploded'], /Unknown event job\.exploded/],
    [[], /at least one event/],
  ])('refuses the events %j, stores nothing', async (events, message) => {
    const [customer, token] = await customerWithToken();
    const result = await api.gql(CREATE, { url: PUBLIC, events }, { token });
    expect(result.data?.createWebhook).toMatchObject({ code: 'INVALID_INPUT', field: 'events' });
    expect(result.data?.createWebhook.message).toMatch(message);
    expect(await hookCount(customer)).toBe(0);
  });

  it('shows the secret once, stores it sealed, and stops at the per-customer limit', async () => {
    const [customer, token] = await customerWithToken();
    const secrets: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const r = await api.gql(CREATE, { url: `${PUBLIC}/${i}`, events: ['job.failed'] }, { token });
      expect(r.data?.createWebhook.__typename).toBe('CreateWebhookSuccess');
      expect(r.data?.createWebhook.webhook).toMatchObject({
        events: ['job.failed'],
        customerId: String(customer.id),
      });
      secrets.push(r.data?.createWebhook.secret);
    }
    expect(secrets.every((s) => /^whsec_[A-Za-z0-9+/]{32}$/.test(s))).toBe(true);
    const stored = await db.orm.em
      .getConnection()
      .execute<{ secret_encrypted: string }[]>(
        'select secret_encrypted from webhooks where customer_id = ?',
        [customer.id],
      );
    for (const [i, row] of stored.entries()) {
      expect(row.secret_encrypted).toMatch(/^v1:/);
      expect(row.secret_encrypted).not.toContain((secrets[i] ?? '').slice(6));
    }
    const over = await api.gql(CREATE, { url: PUBLIC, events: ['job.failed'] }, { token });
    expect(over.data?.createWebhook).toMatchObject({ code: 'INVALID_INPUT' });
    expect(over.data?.createWebhook.message).toMatch(/At most 3 webhooks/);
    expect(await hookCount(customer)).toBe(3);
    // Nothing in the schema gives the secret back.
    const listed = await api.gql('query { me { webhooks { id } } }', {}, { token });
    expect(JSON.stringify(listed)).not.toContain('whsec_');
  });

  it("another customer cannot see, delete or redeliver a customer's webhook", async () => {
    const [alice, aliceToken] = await customerWithToken();
    const [bob, bobToken] = await customerWithToken();
    const created = await api.gql(
      CREATE,
      { url: PUBLIC, events: ['job.completed'] },
      { token: aliceToken },
    );
    const hookId = created.data?.createWebhook.webhook.id;
    const job = await buildJob(db.orm.em, alice, { status: 'completed' });
    await db.orm.em.fork().transactional((em) => recordJobEvent(em, job.id, 'job.completed'));
    const aliceSees = await api.gql(MINE, {}, { token: aliceToken });
    const [delivery] = aliceSees.data?.me.webhooks[0].deliveries.deliveries ?? [];
    expect(delivery?.event).toBe('job.completed');

    expect((await api.gql(MINE, {}, { token: bobToken })).data?.me.webhooks).toEqual([]);
    const peek = await api.gql(
      'query($id: ID!) { customer(id: $id) { webhooks { id } } }',
      { id: String(alice.id) },
      { token: bobToken },
    );
    expect(peek.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const remove = await api.gql(
      'mutation($id: ID!) { deleteWebhook(id: $id) }',
      { id: hookId },
      { token: bobToken },
    );
    expect(remove.data?.deleteWebhook).toBe(false);
    const redeliver = await api.gql(
      'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) }',
      { id: delivery.id },
      { token: bobToken },
    );
    expect(redeliver.data?.redeliverWebhook).toBe(false);
    const forOther = await api.gql(
      CREATE,
      { url: PUBLIC, events: ['job.completed'], customerId: String(alice.id) },
      { token: bobToken },
    );
    expect(forOther.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await hookCount(alice)).toBe(1);
    expect(await hookCount(bob)).toBe(0);

    const own = await api.gql(
      'mutation($id: ID!) { deleteWebhook(id: $id) }',
      { id: hookId },
      { token: aliceToken },
    );
    expect(own.data?.deleteWebhook).toBe(true);
    expect(await hookCount(alice)).toBe(0);
  });

  it('admin tokens make hooks for every customer or for one; customers neither see nor delete them', async () => {
    const [carol, carolToken] = await customerWithToken();
    const before = await hookCount(null);
    const all = await api.gql(CREATE, { url: PUBLIC, events: ['job.failed'] }, { token: admin });
    expect(all.data?.createWebhook.webhook.customerId).toBeNull();
    expect(await hookCount(null)).toBe(before + 1);
    const forCarol = await api.gql(
      CREATE,
      { url: PUBLIC, events: ['job.started'], customerId: String(carol.id) },
      { token: admin },
    );
    const carolHookId = forCarol.data?.createWebhook.webhook.id;
    expect(forCarol.data?.createWebhook.webhook.customerId).toBe(String(carol.id));

    expect((await api.gql(MINE, {}, { token: carolToken })).data?.me.webhooks).toEqual([]);
    const carolDeletes = await api.gql(
      'mutation($id: ID!) { deleteWebhook(id: $id) }',
      { id: carolHookId },
      { token: carolToken },
    );
    expect(carolDeletes.data?.deleteWebhook).toBe(false);
    const adminSees = await api.gql(
      'query($id: ID!) { customer(id: $id) { webhooks { id } } allCustomersWebhooks { id } }',
      { id: String(carol.id) },
      { token: admin },
    );
    expect(adminSees.data?.customer.webhooks).toEqual([{ id: String(carolHookId) }]);
    expect(adminSees.data?.allCustomersWebhooks).toContainEqual({
      id: String(all.data?.createWebhook.webhook.id),
    });
    const customerAsks = await api.gql(
      'query { allCustomersWebhooks { id } }',
      {},
      { token: carolToken },
    );
    expect(customerAsks.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const adminDeletes = await api.gql(
      'mutation($id: ID!) { deleteWebhook(id: $id) }',
      { id: carolHookId },
      { token: admin },
    );
    expect(adminDeletes.data?.deleteWebhook).toBe(true);
  });

  it('making and deleting a hook is audited (who, the target without its query, from where); a refused one, or another customer deleting it, is not', async () => {
    const [dave, daveToken] = await customerWithToken();
    const [, eveToken] = await customerWithToken();
    const audits = async () =>
      db.orm.em.getConnection().execute<
        {
          action: string;
          actor_kind: string;
          target_id: string;
          ip: string | null;
          details: string;
        }[]
      >(
        "select action, actor_kind, target_id, ip, details from audit_events where customer_id = ? and action like 'webhook%' order by id",
        [dave.id],
      );
    const refused = await api.gql(
      CREATE,
      { url: 'https://10.0.0.1/hook', events: ['job.failed'] },
      { token: daveToken },
    );
    expect(refused.data?.createWebhook.code).toBe('INVALID_INPUT');
    const created = await api.gql(
      CREATE,
      { url: `${PUBLIC}/in?token=s3cret`, events: ['job.failed', 'download.ready'] },
      { token: daveToken },
    );
    const id = String(created.data?.createWebhook.webhook.id);
    const remove = 'mutation($id: ID!) { deleteWebhook(id: $id) }';
    expect((await api.gql(remove, { id }, { token: eveToken })).data?.deleteWebhook).toBe(false);
    expect(await audits()).toHaveLength(1);
    expect((await api.gql(remove, { id }, { token: daveToken })).data?.deleteWebhook).toBe(true);
    expect((await api.gql(remove, { id }, { token: daveToken })).data?.deleteWebhook).toBe(false);

    const rows = await audits();
    expect(rows.map((r) => [r.action, r.actor_kind, r.target_id])).toEqual([
      ['webhook_created', 'token', id],
      ['webhook_deleted', 'token', id],
    ]);
    for (const row of rows) {
      expect(row.ip).toMatch(/127\.0\.0\.1/);
      const details = typeof row.details === 'string' ? JSON.parse(row.details) : row.details;
      expect(details).toEqual({
        url: 'https://93.184.216.34/hooks/in',
        events: ['job.failed', 'download.ready'],
      });
    }
    expect(JSON.stringify(rows)).not.toContain('s3cret');
  });

  it('refuses anyone not signed in', async () => {
    const result = await api.gql(CREATE, { url: PUBLIC, events: ['job.failed'] });
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
