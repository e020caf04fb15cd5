import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSRF_HEADER } from '../../src/api/yoga.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { jobTopic } from '../../src/jobs/job-events.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildJob, buildSignInCustomer, customerToken } from './support/factories.js';
import { startTestApi, subscribe, type TestApi } from './support/test-api.js';

const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { id } }';

describe('subscriptions over HTTP are refused at once', () => {
  let db: TestDatabase;
  let api: TestApi;
  let redis: Redis;
  let customer: ICustomer;
  let token: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db });
    redis = new Redis(api.config.BACKUPS_REDIS_URL);
    customer = await buildSignInCustomer(db.orm.em);
    token = await customerToken(db.orm.em, customer);
  });
  afterAll(async () => {
    await redis?.quit();
    await api?.stop();
    await db?.drop();
  });

  /** How many Redis connections listen on the job's channel (the api's job watcher). */
  async function listeners(jobId: number): Promise<number> {
    const [, count] = (await redis.pubsub('NUMSUB', jobTopic(api.prefix, jobId))) as [
      string,
      number,
    ];
    return Number(count);
  }

  // The old api streamed these (SSE, multipart) until nginx gave up, an hour later: the
  // timeout makes such an answer fail the test instead of hanging it.
  it.each([
    { how: 'POST', accept: 'application/json' },
    { how: 'POST', accept: 'text/event-stream' },
    { how: 'POST', accept: 'multipart/mixed' },
    { how: 'GET', accept: 'text/event-stream' },
  ])(
    '$how with Accept: $accept gets a GraphQL error within a second, and no job watcher is made',
    async ({ how, accept }) => {
      // A customer of its own: one active job per customer.
      const owner = await buildSignInCustomer(db.orm.em);
      const token = await customerToken(db.orm.em, owner);
      const job = await buildJob(db.orm.em, owner, { status: 'running' });
      const variables = { id: String(job.id) };
      const headers = { authorization: `Bearer ${token}`, [CSRF_HEADER]: '1', accept };
      const url = new URL(api.url);
      if (how === 'GET') {
        url.searchParams.set('query', JOB_UPDATED);
        url.searchParams.set('variables', JSON.stringify(variables));
      }
      const response = await fetch(url, {
        method: how,
        headers: how === 'POST' ? { ...headers, 'content-type': 'application/json' } : headers,
        body: how === 'POST' ? JSON.stringify({ query: JOB_UPDATED, variables }) : undefined,
        signal: AbortSignal.timeout(1000),
      });

      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/json');
      expect(await response.json()).toEqual({
        errors: [
          {
            message: 'Subscriptions are served over WebSocket (graphql-ws) at /graphql.',
            extensions: { code: 'BAD_REQUEST' },
          },
        ],
      });
      expect(await listeners(job.id)).toBe(0);

      // The same subscription over WebSocket is served, and does listen on the job's channel.
      const sub = subscribe(api.wsClient({ token }), JOB_UPDATED, variables);
      expect((await sub.waitFor(1))[0]?.data?.jobUpdated).toEqual({ id: String(job.id) });
      await expect.poll(() => listeners(job.id)).toBe(1);
      sub.stop();
    },
  );

  it('queries and mutations over HTTP are answered as before', async () => {
    const me = await api.gql('{ me { id } }', {}, { token });
    expect(me.data).toEqual({ me: { id: String(customer.id) } });
    const signOut = await api.gql('mutation { signOut }', {}, { token });
    expect(signOut.errors).toBeUndefined();
  });
});
