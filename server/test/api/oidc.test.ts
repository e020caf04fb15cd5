import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildCustomer } from '../support/factories.js';
import { freePort } from '../support/sandbox.js';
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

  beforeAll(async () => {
    db = await createTestDatabase();
    linked = await buildCustomer(db.orm.em, { host: 'node-a' });
    unverified = await buildCustomer(db.orm.em, { host: 'node-a' });
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
              email: 'new-shop@example.test',
              email_verified: true,
              name: 'New shop',
              backups_node: 'node-b',
            },
            'dash-3': { email: unverified.email, email_verified: false },
            'dash-4': { email: 'stranger@example.test', email_verified: true },
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
  async function signInThrough(login: string, tamper?: (callback: URL) => URL) {
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

  it('a customer the provider places on a node is created there at the first sign-in', async () => {
    const { response, cookies } = await signInThrough('dash-2');
    expect(response.status).toBe(302);
    const me = await whoAmI(cookies);
    expect(me?.email).toBe('new-shop@example.test');
    const [row] = await db.orm.em
      .getConnection()
      .execute<{ host: string; name: string }[]>('select host, name from customers where id = ?', [
        Number(me?.id),
      ]);
    expect(row).toEqual({ host: 'node-b', name: 'New shop' });
  });

  it.each([
    ['dash-3', /did not confirm your e-mail address/],
    ['dash-4', /There is no backup account for stranger@example\.test/],
  ])('%s is refused with a clear message and no session', async (login, message) => {
    const { response, cookies, body } = await signInThrough(login);
    expect(response.status).toBe(400);
    expect(body).toMatch(message);
    expect(await whoAmI(cookies)).toBeNull();
    expect(await identities(login)).toEqual([]);
  });

  it('a callback with another state is refused, no session made', async () => {
    const { response, cookies, body } = await signInThrough('dash-1', (callback) => {
      callback.searchParams.set('state', 'forged-state-value');
      return callback;
    });
    expect(response.status).toBe(400);
    expect(body).toMatch(/not started in this browser/);
    expect(await whoAmI(cookies)).toBeNull();
  });

  it('a callback replayed is refused (its state was used), and an earlier code inside a fresh flow is refused by the provider', async () => {
    const first = await signInThrough('dash-1');
    expect(first.response.status).toBe(302);
    const code = first.callback.searchParams.get('code') ?? '';
    // The same callback again: its state was used.
    const replay = await fetch(first.callback, {
      redirect: 'manual',
      headers: { cookie: `backups_oidc_flow=${first.callback.searchParams.get('state')}` },
    });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toMatch(/expired/);
    // The old code inside a new flow of this browser: the provider refuses it.
    const reused = await signInThrough('dash-1', (callback) => {
      callback.searchParams.set('code', code);
      return callback;
    });
    expect(reused.response.status).toBe(400);
    expect(reused.body).toMatch(/Hosting Dashboard did not confirm this sign-in/);
    expect(await whoAmI(reused.cookies)).toBeNull();
  });
});
