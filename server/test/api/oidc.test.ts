import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildCustomer } from '../support/factories.js';
import { freePort, REDIS_URL } from '../support/sandbox.js';
import { startTestApi, type TestApi } from './support/test-api.js';

type Jar = Map<string, string>;

function keep(jar: Jar, response: Response): void {
  for (const cookie of response.headers.getSetCookie()) {
    const [pair = ''] = cookie.split(';');
    const at = pair.indexOf('=');
    const [name, value] = [pair.slice(0, at), pair.slice(at + 1)];
    if (value === '' || /Max-Age=0/i.test(cookie)) jar.delete(name);
    else jar.set(name, value);
  }
}
const header = (jar: Jar) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

describe('single sign-on through the hosting dashboard (a real OpenID provider on loopback)', () => {
  let db: TestDatabase;
  let api: TestApi;
  let provider: ResultPromise;
  let providerPort: number;
  let apiBase: string;
  let linked: ICustomer;
  let unverified: ICustomer;
  /** A customer the hosting company set up (customer:add), known by their account number. */
  let panelMade: ICustomer;
  /** Accounts whose id tokens come back wrong: each would be linked to `linked` if taken. */
  const FORGED = {
    'forged-nonce': 'nonce',
    'forged-key': 'foreign-key',
    'forged-expired': 'expired',
    'forged-audience': 'audience',
    'forged-issuer': 'issuer',
  } as const;

  beforeAll(async () => {
    db = await createTestDatabase();
    linked = await buildCustomer(db.orm.em, { host: 'node-a' });
    unverified = await buildCustomer(db.orm.em, { host: 'node-a' });
    panelMade = await buildCustomer(db.orm.em, { host: 'node-a' });
    providerPort = await freePort();
    const apiPort = await freePort();
    apiBase = `http://127.0.0.1:${apiPort}`;
    provider = execa(
      process.execPath,
      [
        path.join(import.meta.dirname, '../support/oidc-provider.mjs'),
        String(providerPort),
        'backups',
        'client-secret-of-backups',
        `${apiBase}/auth/oidc/callback`,
      ],
      {
        reject: false,
        env: {
          OIDC_ACCOUNTS: JSON.stringify({
            'dash-1': { email: linked.email, email_verified: true, name: 'Linked' },
            'dash-2': {
              email: 'New-Shop@example.test',
              email_verified: true,
              name: 'New shop',
              backups_account: '7001',
              backups_node: 'node-b',
              backups_site_layout: 'volumes/files',
            },
            'dash-3': { email: unverified.email, email_verified: false },
            'dash-4': { email: 'stranger@example.test', email_verified: true },
            // A node but no account: which site would be theirs?
            'dash-5': {
              email: 'no-site@example.test',
              email_verified: true,
              backups_node: 'node-b',
            },
            // The account of a customer set up by the hosting company, under another address.
            'dash-6': {
              email: 'owner@example.test',
              email_verified: true,
              backups_account: panelMade.id,
              backups_node: 'node-a',
            },
            'dash-7': {
              email: 'moved@example.test',
              email_verified: true,
              backups_account: String(panelMade.id),
              backups_node: 'node-z',
            },
            'dash-8': {
              email: 'nowhere@example.test',
              email_verified: true,
              backups_account: '7002',
            },
            'dash-9': {
              email: linked.email,
              email_verified: true,
              backups_account: '7003',
              backups_node: 'node-b',
            },
            ['x'.repeat(300)]: { email: 'long-sub@example.test', email_verified: true },
            'dash-10': {
              email: 'odd@example.test',
              email_verified: true,
              backups_account: '1 or 1=1',
              backups_node: 'node-b',
            },
            ...Object.fromEntries(
              Object.entries(FORGED).map(([sub, tamper]) => [
                sub,
                { email: linked.email, email_verified: true, tamper },
              ]),
            ),
          }),
        },
      },
    );
    if (!provider.stdout) throw new Error('no stdout');
    await new Promise((resolve) => provider.stdout?.once('data', resolve));
    api = await startTestApi({
      db,
      config: {
        BACKUPS_API_PORT: apiPort,
        BACKUPS_PUBLIC_URL: apiBase,
        BACKUPS_OIDC_ISSUER: `http://127.0.0.1:${providerPort}`,
        BACKUPS_OIDC_CLIENT_ID: 'backups',
        BACKUPS_OIDC_CLIENT_SECRET: 'client-secret-of-backups',
        BACKUPS_OIDC_NAME: 'Hosting Dashboard',
        BACKUPS_OIDC_ALLOW_HTTP: true,
        // This file signs in some thirty times a minute from one address.
        BACKUPS_SIGNIN_LIMIT_PER_IP: 1000,
      },
    });
  });
  afterAll(async () => {
    await api?.stop();
    provider?.kill('SIGTERM');
    await provider;
    await db?.drop();
  });

  /**
   * A browser through the flow: our start page, the provider's login form (the login typed is
   * the account), back to our callback. Returns the callback's answer and our cookies.
   */
  async function signInThrough(
    login: string,
    tamper?: (callback: URL) => URL,
    options: { deliver?: boolean } = {},
  ) {
    const ours: Jar = new Map();
    const theirs: Jar = new Map();
    let response = await fetch(`${apiBase}/auth/oidc/start`, { redirect: 'manual' });
    keep(ours, response);
    let location = response.headers.get('location');
    let current = new URL(`${apiBase}/auth/oidc/start`);
    for (let hop = 0; hop < 12; hop += 1) {
      if (location) {
        let next = new URL(location, current);
        const isCallback = next.pathname === '/auth/oidc/callback';
        if (isCallback && tamper) next = tamper(next);
        if (isCallback && options.deliver === false) {
          return { response, cookies: ours, callback: next, body: '' };
        }
        const jar = next.port === String(providerPort) ? theirs : ours;
        response = await fetch(next, { redirect: 'manual', headers: { cookie: header(jar) } });
        keep(jar, response);
        current = next;
        if (isCallback)
          return { response, cookies: ours, callback: next, body: await response.text() };
        location = response.headers.get('location');
        continue;
      }
      const html = await response.text();
      const action = /action="([^"]+)"/.exec(html)?.[1];
      if (!action) throw new Error(`no form at ${current}: ${html.slice(0, 300)}`);
      const form: Record<string, string> = html.includes('name="login"')
        ? { prompt: 'login', login, password: 'any' }
        : { prompt: 'consent' };
      const target = new URL(action.replace(/&amp;/g, '&'), current);
      response = await fetch(target, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: header(theirs), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
      keep(theirs, response);
      current = target;
      location = response.headers.get('location');
    }
    throw new Error('the flow did not come back');
  }

  const whoAmI = async (cookies: Jar) =>
    (await api.gql('query { me { id email } }', {}, { cookie: header(cookies) })).data?.me;

  const count = async (sql: string, params: unknown[] = []) =>
    Number(
      (await db.orm.em.getConnection().execute<{ n: number }[]>(sql, params))[0]?.n ?? Number.NaN,
    );
  const sessions = () => count('select count(*) as n from sessions');
  const refusals = (reason: string) =>
    count(
      "select count(*) as n from audit_events where action = 'sign_in_failed' and json_value(details, '$.reason') = ?",
      [reason],
    );

  /** The flow ends on our refusal page: 400, the words, no session row, no cookie, no link. */
  async function expectRefused(
    attempt: Promise<{ response: Response; cookies: Jar; body: string }>,
    message: RegExp,
    subject?: string,
  ) {
    const before = await sessions();
    const { response, cookies, body } = await attempt;
    expect(response.status).toBe(400);
    expect(body).toMatch(message);
    expect(await sessions()).toBe(before);
    expect([...cookies.keys()]).not.toContain('backups_session');
    expect(await whoAmI(cookies)).toBeNull();
    if (subject) expect(await identities(subject)).toEqual([]);
  }

  const identities = async (subject: string) =>
    db.orm.em
      .getConnection()
      .execute<{ customer_id: number }[]>(
        'select customer_id from customer_identities where subject = ?',
        [subject],
      );

  it('a customer with a verified e-mail signs in, is linked by (issuer, sub), and lands signed in', async () => {
    const { response, cookies } = await signInThrough('dash-1');
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/');
    expect(await whoAmI(cookies)).toEqual({ id: String(linked.id), email: linked.email });
    expect((await identities('dash-1')).map((r) => Number(r.customer_id))).toEqual([linked.id]);
    // The next time the link alone is used.
    const again = await signInThrough('dash-1');
    expect((await whoAmI(again.cookies))?.id).toBe(String(linked.id));
  });

  it("a new customer is created for the hosting account the provider names, on its node: that site's number, layout and a verified address", async () => {
    const before = await sessions();
    const { response, cookies } = await signInThrough('dash-2');
    expect(response.status).toBe(302);
    expect(await sessions()).toBe(before + 1);
    expect(await whoAmI(cookies)).toEqual({ id: '7001', email: 'new-shop@example.test' });
    const [row] = await db.orm.em
      .getConnection()
      .execute<{ host: string; name: string; site_layout: string }[]>(
        'select host, name, site_layout from customers where id = 7001',
      );
    expect(row).toEqual({ host: 'node-b', name: 'New shop', site_layout: 'volumes/files' });
    expect((await identities('dash-2')).map((r) => Number(r.customer_id))).toEqual([7001]);
    expect(
      await count(
        "select count(*) as n from audit_events where action = 'customer_created' and customer_id = 7001",
      ),
    ).toBe(1);
    // A customer like any other: a backup of their site is queued on their node.
    const backup = await api.gql(
      'mutation { createBackup(scope: BOTH) { __typename ... on CreateBackupSuccess { job { id } } } }',
      {},
      { cookie: header(cookies) },
    );
    expect(backup.data?.createBackup?.__typename).toBe('CreateBackupSuccess');
    // No password signs them in; what is stored is a real hash (of a password nobody has).
    const password = await api.gql(
      'mutation { signIn(email: "new-shop@example.test", password: "a password of nobody") { __typename } }',
    );
    expect(password.data?.signIn?.__typename).toBe('InvalidCredentialsError');
    const [stored] = await db.orm.em
      .getConnection()
      .execute<{ password_hash: string }[]>('select password_hash from customers where id = 7001');
    expect(stored?.password_hash).toMatch(/^\$argon2id\$/);
  });

  it('the account of a customer the hosting company set up is linked, whatever the address', async () => {
    const { response, cookies } = await signInThrough('dash-6');
    expect(response.status).toBe(302);
    expect(await whoAmI(cookies)).toEqual({ id: String(panelMade.id), email: panelMade.email });
    expect((await identities('dash-6')).map((r) => Number(r.customer_id))).toEqual([panelMade.id]);
  });

  it.each([
    [
      'a node, no account',
      'dash-5',
      /There is no backup account for no-site@example\.test/,
      'unknown_customer',
    ],
    ['an account on another node', 'dash-7', /places your site on another server/, 'node_mismatch'],
    ['a new account, no node', 'dash-8', /did not say which server hosts your site/, 'no_node'],
    [
      'a new account, an address in use',
      'dash-9',
      /belongs to another backup account/,
      'email_taken',
    ],
    [
      'an account that is not a number',
      'dash-10',
      /sent an account number we cannot use/,
      'bad_claim',
    ],
    ['a sub of 300 characters', 'x'.repeat(300), /sent an identity we cannot use/, 'bad_claim'],
  ])('%s: refused, nothing created', async (_case, login, message, reason) => {
    const customers = await count('select count(*) as n from customers');
    const refused = await refusals(reason);
    await expectRefused(signInThrough(login), message, login);
    expect(await count('select count(*) as n from customers')).toBe(customers);
    expect(await refusals(reason)).toBe(refused + 1);
  });

  it.each([
    ['dash-3', /did not confirm your e-mail address/],
    ['dash-4', /There is no backup account for stranger@example\.test/],
  ])('%s is refused with a clear message and no session', async (login, message) => {
    await expectRefused(signInThrough(login), message, login);
  });

  it.each(Object.keys(FORGED))(
    '%s: an id token gone wrong is refused by our client, no session, no link',
    async (login) => {
      const refused = await refusals('token_refused');
      await expectRefused(
        signInThrough(login),
        /Hosting Dashboard did not confirm this sign-in/,
        login,
      );
      expect(await refusals('token_refused')).toBe(refused + 1);
    },
  );

  it('a callback carried to another browser (a cross-site link, no flow cookie, or its own) is refused; the flow stays usable by its own browser', async () => {
    const stolen = await signInThrough('dash-1', undefined, { deliver: false });
    const before = await sessions();
    for (const cookie of ['', `backups_oidc_flow=${'x'.repeat(43)}`]) {
      const other = await fetch(stolen.callback, {
        redirect: 'manual',
        headers: { cookie, 'sec-fetch-site': 'cross-site' },
      });
      expect(other.status).toBe(400);
      expect(await other.text()).toMatch(/not started in this browser/);
      expect(other.headers.getSetCookie().join(';')).not.toContain('backups_session=');
    }
    expect(await sessions()).toBe(before);
    // The browser that started it still finishes its own sign-in.
    const own = await fetch(stolen.callback, {
      redirect: 'manual',
      headers: { cookie: header(stolen.cookies) },
    });
    expect(own.status).toBe(302);
    expect(await sessions()).toBe(before + 1);
  });

  it('a callback with another state is refused, no session made', async () => {
    await expectRefused(
      signInThrough('dash-1', (callback) => {
        callback.searchParams.set('state', 'forged-state-value');
        return callback;
      }),
      /not started in this browser/,
    );
  });

  it('a callback replayed is refused (its state was used), and an earlier code inside a fresh flow is refused by the provider', async () => {
    const first = await signInThrough('dash-1');
    expect(first.response.status).toBe(302);
    const code = first.callback.searchParams.get('code') ?? '';
    const before = await sessions();
    // The same callback again: its state was used.
    const replay = await fetch(first.callback, {
      redirect: 'manual',
      headers: { cookie: `backups_oidc_flow=${first.callback.searchParams.get('state')}` },
    });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toMatch(/expired/);
    expect(await sessions()).toBe(before);
    // The old code inside a new flow of this browser: the provider refuses it.
    await expectRefused(
      signInThrough('dash-1', (callback) => {
        callback.searchParams.set('code', code);
        return callback;
      }),
      /Hosting Dashboard did not confirm this sign-in/,
    );
  });

  describe('the start of a sign-in', () => {
    const flows = async (prefix: string) => {
      const redis = new Redis(REDIS_URL);
      try {
        return (await redis.keys(`${prefix}:oidc:*`)).length;
      } finally {
        await redis.quit();
      }
    };
    const startOn = async (config: Partial<Config>) => {
      const other = await startTestApi({
        db,
        config: {
          BACKUPS_API_PORT: await freePort(),
          BACKUPS_OIDC_CLIENT_ID: 'backups',
          BACKUPS_OIDC_CLIENT_SECRET: 'client-secret-of-backups',
          BACKUPS_OIDC_NAME: 'Hosting Dashboard',
          BACKUPS_OIDC_ALLOW_HTTP: true,
          ...config,
        },
      });
      const start = () => fetch(new URL('/auth/oidc/start', other.url), { redirect: 'manual' });
      return { other, start };
    };

    it('is limited per address: over the limit it is answered 429 and keeps nothing', async () => {
      const { other, start } = await startOn({
        BACKUPS_OIDC_ISSUER: `http://127.0.0.1:${providerPort}`,
        BACKUPS_SIGNIN_LIMIT_PER_IP: 2,
      });
      try {
        const prefix = other.config.BACKUPS_REDIS_PREFIX;
        expect((await start()).status).toBe(302);
        expect((await start()).status).toBe(302);
        expect(await flows(prefix)).toBe(2);
        const over = await start();
        expect(over.status).toBe(429);
        expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(await over.text()).toMatch(/Too many sign-ins from here/);
        expect(over.headers.get('set-cookie')).toBeNull();
        expect(await flows(prefix)).toBe(2);
      } finally {
        await other.stop();
      }
    });

    it('with the provider down, says so in plain words (503) and keeps nothing', async () => {
      const { other, start } = await startOn({
        BACKUPS_OIDC_ISSUER: `http://127.0.0.1:${await freePort()}`,
      });
      try {
        const answer = await start();
        expect(answer.status).toBe(503);
        expect(await answer.text()).toMatch(
          /Signing in with Hosting Dashboard is not possible right now.*sign in with your password/,
        );
        expect(await flows(other.config.BACKUPS_REDIS_PREFIX)).toBe(0);
      } finally {
        await other.stop();
      }
    });
  });
});
