import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSRF_HEADER } from '../../src/api/yoga.js';
import { ApiToken } from '../../src/auth/api-token.entity.js';
import { sha256Hex } from '../../src/auth/credentials.js';
import { Session } from '../../src/auth/session.entity.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  auditRows,
  buildSignInCustomer,
  customerToken,
  jobRows,
  PASSWORD,
} from './support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const SIGN_IN = `mutation($email: String!, $password: String!) {
  signIn(email: $email, password: $password) {
    __typename
    ... on SignInSuccess { customer { id email } }
    ... on Error { code message }
    ... on RateLimitedError { retryAfterSeconds }
  }
}`;
const ME = '{ me { id email name } }';
const CREATE_BACKUP = `mutation($customerId: ID) {
  createBackup(scope: BOTH, customerId: $customerId) {
    __typename
    ... on CreateBackupSuccess { job { id status } }
    ... on Error { code message }
  }
}`;

describe('signing in, sessions and API tokens', () => {
  let db: TestDatabase;
  let api: TestApi;
  let alice: ICustomer;
  let bob: ICustomer;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db });
    alice = await buildSignInCustomer(db.orm.em);
    bob = await buildSignInCustomer(db.orm.em);
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('sign in sets an HttpOnly session cookie; me answers; sign out ends the session', async () => {
    const signIn = await api.gql(SIGN_IN, { email: alice.email, password: PASSWORD });
    expect(signIn.data?.signIn).toEqual({
      __typename: 'SignInSuccess',
      customer: { id: String(alice.id), email: alice.email },
    });
    const setCookie = signIn.setCookies.find((c) => c.startsWith('backups_session='));
    expect(setCookie).toMatch(/^backups_session=[A-Za-z0-9_-]{43}; /);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Lax');
    expect(setCookie).toContain('Path=/');
    expect(setCookie).toContain(`Max-Age=${14 * 86400}`);
    expect(setCookie).not.toContain('Secure'); // BACKUPS_PUBLIC_URL is http here
    const cookie = setCookie?.split(';')[0] ?? '';

    // Only the SHA-256 of the token is stored.
    const token = cookie.slice('backups_session='.length);
    const session = await db.orm.em.fork().findOne(Session, { id: sha256Hex(token) });
    expect(session?.customer?.id).toBe(alice.id);

    const me = await api.gql(ME, {}, { cookie });
    expect(me.data?.me).toEqual({ id: String(alice.id), email: alice.email, name: alice.name });
    expect((await auditRows(db.orm.em, 'sign_in')).at(-1)).toMatchObject({
      actorKind: 'customer',
      customerId: alice.id,
      ip: '127.0.0.1',
    });

    const signOut = await api.gql('mutation { signOut }', {}, { cookie });
    expect(signOut.data?.signOut).toBe(true);
    expect(signOut.setCookies.join()).toContain('backups_session=; ');
    expect(await db.orm.em.fork().count(Session, { id: sha256Hex(token) })).toBe(0);
    expect((await auditRows(db.orm.em, 'sign_out')).at(-1)?.customerId).toBe(alice.id);

    const after = await api.gql(ME, {}, { cookie });
    expect(after.errors).toBeUndefined();
    expect(after.data?.me).toBeNull();
  });

  it('over https the session cookie is __Host- (Secure, Path=/, no Domain), and a cookie of the plain name planted by a sibling site signs nobody in', async () => {
    const secure = await startTestApi({
      db,
      config: { BACKUPS_PUBLIC_URL: 'https://backups.hosting.example' },
    });
    try {
      const signIn = await secure.gql(SIGN_IN, { email: alice.email, password: PASSWORD });
      expect(signIn.data?.signIn.__typename).toBe('SignInSuccess');
      const setCookie = signIn.setCookies.find((c) => c.startsWith('__Host-backups_session='));
      expect(setCookie).toMatch(/^__Host-backups_session=[A-Za-z0-9_-]{43}; /);
      expect(setCookie).toContain('; Secure');
      expect(setCookie).toContain('; Path=/');
      expect(setCookie).not.toMatch(/domain=/i);
      const token = (setCookie ?? '').split(';')[0]?.split('=')[1] ?? '';
      const me = (cookie: string) => secure.gql(ME, {}, { cookie });
      expect((await me(`__Host-backups_session=${token}`)).data?.me?.email).toBe(alice.email);
      // A site on a sibling subdomain can set "backups_session" for the whole domain (Bob's
      // session, to have Alice act in his account unawares): it is not read.
      const bobSession = await api.signIn(bob.email, PASSWORD);
      expect((await me(bobSession)).data?.me).toBeNull();
      expect((await me(`${bobSession}; __Host-backups_session=${token}`)).data?.me?.email).toBe(
        alice.email,
      );
    } finally {
      await secure.stop();
    }
  });

  it('a session past its expiry is nobody, though its row is still there', async () => {
    const cookie = await api.signIn(bob.email, PASSWORD);
    const id = sha256Hex(cookie.slice('backups_session='.length));
    expect((await api.gql(ME, {}, { cookie })).data?.me?.id).toBe(String(bob.id));
    await db.orm.em
      .fork()
      .nativeUpdate(Session, { id }, { expiresAt: new Date(Date.now() - 1000) });
    const after = await api.gql(ME, {}, { cookie });
    expect(after.data?.me).toBeNull();
    const backup = await api.gql(CREATE_BACKUP, {}, { cookie });
    expect(backup.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await jobRows(db.orm.em, bob)).toHaveLength(0);
  });

  it('me is null without credentials', async () => {
    const me = await api.gql(ME);
    expect(me.errors).toBeUndefined();
    expect(me.data).toEqual({ me: null });
  });

  it('a wrong password and an unknown email are both INVALID_CREDENTIALS, and audited', async () => {
    const wrong = await api.gql(SIGN_IN, { email: bob.email, password: 'not it' });
    const unknown = await api.gql(SIGN_IN, { email: 'nobody@example.test', password: PASSWORD });
    for (const result of [wrong, unknown]) {
      expect(result.data?.signIn).toMatchObject({
        __typename: 'InvalidCredentialsError',
        code: 'INVALID_CREDENTIALS',
      });
      expect(result.setCookies).toEqual([]);
    }
    const failures = await auditRows(db.orm.em, 'sign_in_failed');
    expect(failures.map((f) => [f.customerId, f.details?.email, f.ip])).toEqual(
      expect.arrayContaining([
        [bob.id, bob.email, '127.0.0.1'],
        [null, 'nobody@example.test', '127.0.0.1'],
      ]),
    );
  });

  it('the sixth sign-in attempt for one email within a minute is RATE_LIMITED, even with the right password', async () => {
    const carol = await buildSignInCustomer(db.orm.em);
    for (let i = 0; i < 5; i++) {
      const result = await api.gql(SIGN_IN, { email: carol.email, password: 'guess' });
      expect(result.data?.signIn.code).toBe('INVALID_CREDENTIALS');
    }
    const limited = await api.gql(SIGN_IN, { email: carol.email, password: PASSWORD });
    expect(limited.data?.signIn).toMatchObject({
      __typename: 'RateLimitedError',
      code: 'RATE_LIMITED',
    });
    expect(limited.data?.signIn.retryAfterSeconds).toBeGreaterThan(0);
    expect(limited.data?.signIn.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(limited.setCookies).toEqual([]);
    expect((await auditRows(db.orm.em, 'sign_in_failed')).at(-1)?.details).toEqual({
      email: carol.email,
      reason: 'rate_limited',
    });
  });

  it('more than 20 sign-ins from one address within a minute are RATE_LIMITED, whatever the email', async () => {
    const own = await startTestApi({ db }); // fresh counters
    try {
      const customers = await Promise.all([1, 2, 3].map(() => buildSignInCustomer(db.orm.em)));
      const outcomes: string[] = [];
      for (let i = 0; i < 21; i++) {
        const customer = customers[i % 3] as ICustomer;
        const result = await own.gql(SIGN_IN, { email: customer.email, password: `x${i}` });
        outcomes.push(result.data?.signIn.__typename);
      }
      expect(outcomes.slice(0, 15).every((t) => t === 'InvalidCredentialsError')).toBe(true);
      expect(outcomes.at(-1)).toBe('RateLimitedError');
    } finally {
      await own.stop();
    }
  });

  it('no credentials: a mutation is refused with UNAUTHENTICATED and makes no job', async () => {
    const result = await api.gql(CREATE_BACKUP);
    expect(result.data).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await jobRows(db.orm.em, alice)).toEqual([]);
  });

  it('an API token acts for its customer; once revoked it is UNAUTHENTICATED', async () => {
    const cookie = await api.signIn(alice.email, PASSWORD);
    const created = await api.gql(
      `mutation { createApiToken(name: "  CI deploys  ") {
        __typename
        ... on CreateApiTokenSuccess { token apiToken { id name prefix } }
      } }`,
      {},
      { cookie },
    );
    const { token, apiToken } = created.data?.createApiToken ?? {};
    expect(token).toMatch(/^cbk_[A-Za-z0-9_-]{43}$/);
    expect(apiToken.name).toBe('CI deploys');
    expect(token.startsWith(apiToken.prefix)).toBe(true);
    const stored = await db.orm.em.fork().findOneOrFail(ApiToken, { id: Number(apiToken.id) });
    expect(stored.tokenHash).toBe(sha256Hex(token));
    expect((await auditRows(db.orm.em, 'token_created')).at(-1)?.targetId).toBe(apiToken.id);

    const listed = await api.gql('{ me { apiTokens { id name } } }', {}, { cookie });
    expect(listed.data?.me.apiTokens).toContainEqual({ id: apiToken.id, name: 'CI deploys' });

    const me = await api.gql(ME, {}, { token, csrf: false });
    expect(me.data?.me.id).toBe(String(alice.id));
    // Its use is recorded (to the minute), for the customer's token list.
    const used = await db.orm.em.fork().findOneOrFail(ApiToken, { id: Number(apiToken.id) });
    expect(Math.abs((used.lastUsedAt?.getTime() ?? 0) - Date.now())).toBeLessThan(5_000);

    // A token cannot mint more tokens.
    const minted = await api.gql(
      'mutation { createApiToken(name: "x") { __typename } }',
      {},
      { token },
    );
    expect(minted.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    // Bob cannot revoke Alice's token.
    const bobCookie = await api.signIn(bob.email, PASSWORD);
    const bobRevoke = await api.gql(
      'mutation($id: ID!) { revokeApiToken(id: $id) }',
      { id: apiToken.id },
      { cookie: bobCookie },
    );
    expect(bobRevoke.data?.revokeApiToken).toBe(false);
    expect((await api.gql(ME, {}, { token })).data?.me.id).toBe(String(alice.id));

    const revoke = await api.gql(
      'mutation($id: ID!) { revokeApiToken(id: $id) }',
      { id: apiToken.id },
      { cookie },
    );
    expect(revoke.data?.revokeApiToken).toBe(true);
    expect((await auditRows(db.orm.em, 'token_revoked')).at(-1)?.targetId).toBe(apiToken.id);

    const revoked = await api.gql(CREATE_BACKUP, {}, { token });
    expect(revoked.status).toBe(401);
    expect(revoked.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await jobRows(db.orm.em, alice)).toEqual([]);
  });

  it('a forged or malformed bearer token is UNAUTHENTICATED', async () => {
    for (const authorization of [`Bearer cbk_${'A'.repeat(43)}`, 'Bearer ', 'Basic dXNlcjpwYXNz']) {
      const result = await api.gql(CREATE_BACKUP, {}, { headers: { authorization } });
      expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    expect(await jobRows(db.orm.em, alice)).toEqual([]);
  });

  it('an admin token acts for any customer through customerId, and reads any customer', async () => {
    const token = await adminToken(db.orm.em);
    const created = await api.gql(CREATE_BACKUP, { customerId: String(bob.id) }, { token });
    expect(created.data?.createBackup.__typename).toBe('CreateBackupSuccess');
    const rows = await jobRows(db.orm.em, bob);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ requestedByKind: 'admin', status: 'pending' });

    const read = await api.gql(
      'query($id: ID!) { customer(id: $id) { email } }',
      { id: String(bob.id) },
      { token },
    );
    expect(read.data?.customer.email).toBe(bob.email);

    const withoutCustomer = await api.gql(CREATE_BACKUP, {}, { token });
    expect(withoutCustomer.data?.createBackup.code).toBe('INVALID_INPUT');
  });

  it('a customer naming another customer is FORBIDDEN and nothing is created', async () => {
    const token = await customerToken(db.orm.em, alice);
    const read = await api.gql(
      'query($id: ID!) { customer(id: $id) { email } }',
      { id: String(bob.id) },
      { token },
    );
    expect(read.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(read.data?.customer).toBeNull();

    const before = (await jobRows(db.orm.em, bob)).length;
    const act = await api.gql(CREATE_BACKUP, { customerId: String(bob.id) }, { token });
    expect(act.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await jobRows(db.orm.em, bob)).toHaveLength(before);
    expect(await jobRows(db.orm.em, alice)).toEqual([]);
  });

  it('a cookie-only POST without the CSRF header is refused and makes no job', async () => {
    const cookie = await api.signIn(alice.email, PASSWORD);
    const result = await api.gql(CREATE_BACKUP, {}, { cookie, csrf: false });
    expect(result.status).toBe(403);
    expect(result.data).toBeNull();
    // A form-like cross-site request is refused the same way.
    const form = await fetch(api.url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', cookie },
      body: JSON.stringify({ query: 'mutation { createBackup(scope: BOTH) { __typename } }' }),
    });
    expect(form.status).toBe(403);
    expect(await jobRows(db.orm.em, alice)).toEqual([]);
    expect(await api.queuedJobIds(alice.host)).not.toContain(expect.anything());
  });

  it('another origin is never allowed to read answers with the session cookie (no CORS)', async () => {
    const cookie = await api.signIn(alice.email, PASSWORD);
    const origin = 'https://other-customer.example';
    // The browser's preflight for a credentialed POST with the CSRF header: not granted.
    const preflight = await fetch(api.url, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': `content-type,${CSRF_HEADER}`,
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
    // Even a request that reaches the api carries no grant for that origin to read the answer.
    const answer = await fetch(api.url, {
      method: 'POST',
      headers: { origin, cookie, 'content-type': 'application/json', [CSRF_HEADER]: '1' },
      body: JSON.stringify({ query: '{ me { email } }' }),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
