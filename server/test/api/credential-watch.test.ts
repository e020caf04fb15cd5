import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiToken } from '../../src/auth/api-token.entity.js';
import { revokeApiToken } from '../../src/auth/api-tokens.js';
import { credentialRecheck } from '../../src/auth/credential-watch.js';
import { sha256Hex } from '../../src/auth/credentials.js';
import { Session } from '../../src/auth/session.entity.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  buildJob,
  buildSignInCustomer,
  customerToken,
  PASSWORD,
  updateJob,
} from './support/factories.js';
import {
  credentialReads,
  quietPeriod,
  sessionIdOf,
  startTestApi,
  subscribe,
  type TestApi,
  within,
} from './support/test-api.js';

const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { id status phase } }';

async function tokenId(db: TestDatabase, secret: string): Promise<number> {
  return (await db.orm.em.fork().findOneOrFail(ApiToken, { tokenHash: sha256Hex(secret) })).id;
}

describe('revocations end subscriptions on every api process, at once', () => {
  let db: TestDatabase;
  let one: TestApi;
  let other: TestApi;
  let customer: ICustomer;
  let redis: Redis;

  beforeAll(async () => {
    db = await createTestDatabase();
    one = await startTestApi({ db });
    // A second api process: the same database, Redis prefix and channels.
    other = await startTestApi({ db, prefix: one.prefix });
    customer = await buildSignInCustomer(db.orm.em);
    redis = new Redis(one.config.BACKUPS_REDIS_URL);
  });
  afterAll(async () => {
    await redis?.quit();
    await other?.stop();
    await one?.stop();
    await db?.drop();
  });

  it("a token revoked through one api process ends its subscriptions on another within a second, and no one else's", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const vars = { id: String(job.id) };
    const revoked = await customerToken(db.orm.em, customer);
    const kept = await customerToken(db.orm.em, customer);
    const gone = [
      subscribe(other.wsClient({ token: revoked }), JOB_UPDATED, vars),
      subscribe(one.wsClient({ token: revoked }), JOB_UPDATED, vars),
    ];
    const staying = subscribe(other.wsClient({ token: kept }), JOB_UPDATED, vars);
    await Promise.all([...gone, staying].map((sub) => sub.waitFor(1)));

    const cookie = await one.signIn(customer.email, PASSWORD);
    const revokedAt = Date.now();
    const answer = await one.gql(
      'mutation($id: ID!) { revokeApiToken(id: $id) }',
      { id: String(await tokenId(db, revoked)) },
      { cookie },
    );
    expect(answer.data?.revokeApiToken).toBe(true);
    await within(Promise.all(gone.map((sub) => sub.ended)), 1000);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    for (const sub of gone) {
      expect(sub.results).toHaveLength(2);
      expect(sub.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }

    await updateJob(db.orm.em, job.id, { phase: 'UPLOADING' });
    await one.publish({ id: job.id, customerId: customer.id });
    await staying.waitFor(2);
    staying.stop();
    expect(staying.results.map((r) => r.data?.jobUpdated.phase)).toEqual([null, 'UPLOADING']);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it("token:revoke (revokeApiToken, as the CLI calls it) ends an admin token's subscriptions within a second, with no job event", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const admin = await adminToken(db.orm.em);
    const sub = subscribe(other.wsClient({ token: admin }), JOB_UPDATED, { id: String(job.id) });
    await sub.waitFor(1);

    const revokedAt = Date.now();
    expect(
      await revokeApiToken(db.orm.em, await tokenId(db, admin), { redis, prefix: one.prefix }),
    ).toBe(true);
    await within(sub.ended, 1000);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect(sub.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // Once revoked, there is nothing left to revoke.
    expect(
      await revokeApiToken(db.orm.em, await tokenId(db, admin), { redis, prefix: one.prefix }),
    ).toBe(false);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });
});

describe('the periodic check of credentials, behind the revocation messages', () => {
  let db: TestDatabase;
  let api: TestApi;
  let customer: ICustomer;
  const everyMs = credentialRecheck.everyMs;

  beforeAll(async () => {
    credentialRecheck.everyMs = 500;
    db = await createTestDatabase();
    api = await startTestApi({ db, config: { BACKUPS_SIGNIN_LIMIT_PER_EMAIL: 100 } });
    customer = await buildSignInCustomer(db.orm.em);
  });
  afterAll(async () => {
    credentialRecheck.everyMs = everyMs;
    await api?.stop();
    await db?.drop();
  });

  it('a token revoked and a session expired by hand, with no announcement, end their subscriptions at the next check, with no job event', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const vars = { id: String(job.id) };
    const token = await customerToken(db.orm.em, customer);
    const cookie = await api.signIn(customer.email, PASSWORD);
    const subs = [
      subscribe(api.wsClient({ token }), JOB_UPDATED, vars),
      subscribe(api.wsClient({ cookie }), JOB_UPDATED, vars),
    ];
    await Promise.all(subs.map((sub) => sub.waitFor(1)));

    const reads = await credentialReads(db, async () => {
      await db.orm.em
        .fork()
        .nativeUpdate(ApiToken, { tokenHash: sha256Hex(token) }, { revokedAt: new Date() });
      await db.orm.em
        .fork()
        .nativeUpdate(
          Session,
          { id: sessionIdOf(cookie) },
          { expiresAt: new Date(Date.now() - 1000) },
        );
      await within(Promise.all(subs.map((sub) => sub.ended)), 2000);
    });
    expect(reads).toBeGreaterThan(0);
    for (const sub of subs) {
      expect(sub.results).toHaveLength(2);
      expect(sub.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it("a session's expiry moved later by hand is followed: its subscriptions go on past the old time", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const cookie = await api.signIn(customer.email, PASSWORD);
    const soon = new Date(Math.ceil((Date.now() + 2000) / 1000) * 1000);
    await db.orm.em.fork().nativeUpdate(Session, { id: sessionIdOf(cookie) }, { expiresAt: soon });
    const sub = subscribe(api.wsClient({ cookie }), JOB_UPDATED, { id: String(job.id) });
    await sub.waitFor(1);

    await db.orm.em
      .fork()
      .nativeUpdate(
        Session,
        { id: sessionIdOf(cookie) },
        { expiresAt: new Date(Date.now() + 3600_000) },
      );
    await quietPeriod(soon.getTime() - Date.now() + 500);
    await updateJob(db.orm.em, job.id, { phase: 'UPLOADING' });
    await api.publish({ id: job.id, customerId: customer.id });
    await sub.waitFor(2);
    sub.stop();
    expect(sub.results.map((r) => r.data?.jobUpdated.phase)).toEqual([null, 'UPLOADING']);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });
});
