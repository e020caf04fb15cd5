import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiToken } from '../../src/auth/api-token.entity.js';
import { revokeApiToken } from '../../src/auth/api-tokens.js';
import { BearerCache } from '../../src/auth/bearer-cache.js';
import { announceCredentialEnded } from '../../src/auth/credential-events.js';
import { sha256Hex } from '../../src/auth/credentials.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import type { JobPubSub } from '../../src/graphql/context.js';
import { createLogger } from '../../src/infra/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { clearRedisPrefix, REDIS_URL, redisPrefix } from '../support/sandbox.js';
import { adminToken, buildSignInCustomer, customerToken, PASSWORD } from './support/factories.js';
import { credentialReads, startTestApi, type TestApi } from './support/test-api.js';

const ME = '{ me { id } }';

async function tokenId(db: TestDatabase, secret: string): Promise<number> {
  return (await db.orm.em.fork().findOneOrFail(ApiToken, { tokenHash: sha256Hex(secret) })).id;
}

/** Asks `me` with the token every 10 ms until it is refused; how long that took (ms). */
async function refusedAfter(api: TestApi, token: string, since: number): Promise<number> {
  for (;;) {
    const answer = await api.gql(ME, {}, { token });
    if (answer.status === 401) {
      expect(answer.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      return Date.now() - since;
    }
    expect(answer.data?.me).not.toBeNull();
    if (Date.now() - since > 5000) return Date.now() - since;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('API tokens are remembered per api process and forgotten when revoked', () => {
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

  it("a token's later requests read no api_tokens row; revoked through one process, it is refused there at once and on another within a second", async () => {
    const token = await customerToken(db.orm.em, customer);
    for (const api of [one, other]) {
      expect((await api.gql(ME, {}, { token })).data?.me.id).toBe(String(customer.id));
      // The first token makes the process join the revocation channel; it remembers tokens
      // once the subscription is confirmed (a round trip to Redis).
      for (let i = 0; i < 100; i++) {
        if ((await credentialReads(db, () => api.gql(ME, {}, { token }))) === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const reads = await credentialReads(db, async () => {
      for (let i = 0; i < 5; i++) {
        for (const api of [one, other]) {
          expect((await api.gql(ME, {}, { token })).data?.me.id).toBe(String(customer.id));
        }
      }
    });
    expect(reads).toBe(0);

    const cookie = await one.signIn(customer.email, PASSWORD);
    const answer = await one.gql(
      'mutation($id: ID!) { revokeApiToken(id: $id) }',
      { id: String(await tokenId(db, token)) },
      { cookie },
    );
    const revokedAt = Date.now();
    expect(answer.data?.revokeApiToken).toBe(true);
    // The process that revoked it forgot it before answering.
    const here = await one.gql(ME, {}, { token });
    expect(here.status).toBe(401);
    expect(await refusedAfter(other, token, revokedAt)).toBeLessThan(1000);
  });

  it('token:revoke (revokeApiToken, as the CLI calls it) makes an admin token refused on every api process within a second', async () => {
    const admin = await adminToken(db.orm.em);
    const other2 = await customerToken(db.orm.em, customer);
    for (const api of [one, other]) {
      expect((await api.gql(ME, {}, { token: admin })).status).toBe(200);
      expect((await api.gql(ME, {}, { token: other2 })).data?.me.id).toBe(String(customer.id));
    }
    const revokedAt = Date.now();
    expect(
      await revokeApiToken(db.orm.em, await tokenId(db, admin), { redis, prefix: one.prefix }),
    ).toBe(true);
    for (const api of [one, other]) {
      expect(await refusedAfter(api, admin, revokedAt)).toBeLessThan(1000);
    }
    // Another token of the same api processes goes on working.
    for (const api of [one, other]) {
      expect((await api.gql(ME, {}, { token: other2 })).data?.me.id).toBe(String(customer.id));
    }
  });

  it('a forged token is read every time and never remembered', async () => {
    const forged = `cbk_${'B'.repeat(43)}`;
    const reads = await credentialReads(db, async () => {
      for (let i = 0; i < 3; i++)
        expect((await one.gql(ME, {}, { token: forged })).status).toBe(401);
    });
    expect(reads).toBe(3);
  });
});

describe('the token cache serves only while it hears the revocation channel', () => {
  let db: TestDatabase;
  let customer: ICustomer;
  const prefix = redisPrefix('tc');
  let publisher: Redis;
  let subscriber: Redis;
  let cache: BearerCache;

  beforeAll(async () => {
    db = await createTestDatabase();
    customer = await buildSignInCustomer(db.orm.em);
    publisher = new Redis(REDIS_URL);
    subscriber = new Redis(REDIS_URL);
    const pubSub: JobPubSub = createPubSub({
      eventTarget: createRedisEventTarget({
        publishClient: publisher,
        subscribeClient: subscriber,
      }),
    });
    cache = new BearerCache({
      pubSub,
      subscriber,
      prefix,
      logger: createLogger('token-cache-test', 'silent'),
    });
    // The cache listens from the first token it is asked about.
    expect(await cache.viewer(db.orm.em, `cbk_${'C'.repeat(43)}`)).toBeNull();
    const until = Date.now() + 5000;
    while (!cache.serving && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  });
  afterAll(async () => {
    await cache?.stop();
    await clearRedisPrefix(prefix, publisher);
    await Promise.allSettled([publisher?.quit(), subscriber?.quit()]);
    await db?.drop();
  });

  it('a revocation announced while the subscriber connection was down is not missed: the cache is emptied and the row read again', async () => {
    expect(cache.serving).toBe(true);
    const token = await customerToken(db.orm.em, customer);
    const id = await tokenId(db, token);
    expect((await cache.viewer(db.orm.em, token))?.tokenId).toBe(id);
    expect(await credentialReads(db, () => cache.viewer(db.orm.em, token))).toBe(0);

    const closed = new Promise<void>((resolve) => subscriber.once('close', () => resolve()));
    const ready = new Promise<void>((resolve) => subscriber.once('ready', () => resolve()));
    subscriber.disconnect(true); // drops the connection; ioredis reconnects and resubscribes
    await closed;
    expect(cache.serving).toBe(false);
    // Revoked and announced while nobody listens: the message is lost.
    await db.orm.em.fork().nativeUpdate(ApiToken, { id }, { revokedAt: new Date() });
    await announceCredentialEnded({ redis: publisher, prefix }, { token: id });
    await ready;
    expect(await cache.viewer(db.orm.em, token)).toBeNull();

    // Heard again, a new token is remembered, and its announced revocation ends it.
    const until = Date.now() + 5000;
    while (!cache.serving && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(cache.serving).toBe(true);
    const next = await customerToken(db.orm.em, customer);
    const nextId = await tokenId(db, next);
    expect((await cache.viewer(db.orm.em, next))?.tokenId).toBe(nextId);
    expect(await credentialReads(db, () => cache.viewer(db.orm.em, next))).toBe(0);
    await db.orm.em.fork().nativeUpdate(ApiToken, { id: nextId }, { revokedAt: new Date() });
    await announceCredentialEnded({ redis: publisher, prefix }, { token: nextId });
    const revokedAt = Date.now();
    while ((await cache.viewer(db.orm.em, next)) !== null && Date.now() - revokedAt < 2000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });
});
