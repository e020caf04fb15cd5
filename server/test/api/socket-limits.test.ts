import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sessionCookieName } from '../../src/auth/sessions.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  buildJob,
  buildSignInCustomer,
  customerToken,
  PASSWORD,
  updateJob,
} from './support/factories.js';
import { quietPeriod, startTestApi, subscribe, type TestApi } from './support/test-api.js';

const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { id status } }';

/** A bare graphql-ws socket, to see exactly how the api answers and closes it. */
function openSocket(url: string, headers: Record<string, string> = {}): WebSocket {
  return new WebSocket(url, 'graphql-transport-ws', { headers });
}

/** A promise that must settle within `ms`: an api that never answers fails the test quickly. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref();
    }),
  ]);
}

/** How the api closes the socket (within 6 s). */
function closeOf(socket: WebSocket): Promise<{ code: number; reason: string }> {
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return within(closed, 6000);
}

/** The HTTP status of an upgrade the api refused (null when it was accepted). */
function refusal(socket: WebSocket): Promise<number | null> {
  return new Promise((resolve) => {
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.on('error', () => {}); // terminate() reports the unfinished handshake
      socket.terminate();
    });
    socket.once('open', () => resolve(null));
  });
}

/** connection_init with these params, resolving to the api's first answer. */
async function init(socket: WebSocket, payload: Record<string, unknown> = {}): Promise<string> {
  if (socket.readyState !== WebSocket.OPEN) await once(socket, 'open');
  socket.send(JSON.stringify({ type: 'connection_init', payload }));
  const [data] = await once(socket, 'message');
  return JSON.parse(String(data)).type;
}

describe('WebSockets: anonymous sockets, sockets per address, subscriptions per viewer', () => {
  let db: TestDatabase;
  let customer: ICustomer;
  let token: string;
  const apis: TestApi[] = [];

  async function api(config: Parameters<typeof startTestApi>[0]['config'] = {}): Promise<TestApi> {
    const started = await startTestApi({ db, config });
    apis.push(started);
    return started;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    customer = await buildSignInCustomer(db.orm.em);
    token = await customerToken(db.orm.em, customer);
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await db?.drop();
  });

  describe('authentication at connection_init', () => {
    let plain: TestApi;
    beforeAll(async () => {
      plain = await api();
    });

    it('an anonymous connection_init is closed with 4403 Forbidden', async () => {
      const socket = openSocket(plain.wsUrl);
      const closed = closeOf(socket);
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      expect(await closed).toEqual({
        code: 4403,
        reason: 'Forbidden: send an API token in connection_init, or sign in',
      });
    });

    it('an unknown API token, or a session cookie that no longer holds, is closed with 4403', async () => {
      const unknown = openSocket(plain.wsUrl);
      const unknownClosed = closeOf(unknown);
      await once(unknown, 'open');
      unknown.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer nope' } }),
      );
      expect((await unknownClosed).code).toBe(4403);

      const stale = openSocket(plain.wsUrl, {
        cookie: `${sessionCookieName(plain.config.BACKUPS_PUBLIC_URL)}=not-a-session`,
        origin: new URL(plain.config.BACKUPS_PUBLIC_URL).origin,
      });
      const staleClosed = closeOf(stale);
      await once(stale, 'open');
      stale.send(JSON.stringify({ type: 'connection_init' }));
      expect((await staleClosed).code).toBe(4403);
    });

    it('a token or a session cookie is acknowledged', async () => {
      const byToken = openSocket(plain.wsUrl);
      expect(await init(byToken, { authorization: `Bearer ${token}` })).toBe('connection_ack');
      byToken.close();

      const cookie = await plain.signIn(customer.email, PASSWORD);
      const byCookie = openSocket(plain.wsUrl, {
        cookie,
        origin: new URL(plain.config.BACKUPS_PUBLIC_URL).origin,
      });
      expect(await init(byCookie)).toBe('connection_ack');
      byCookie.close();
    });

    it('a socket that never sends connection_init is closed within 5 seconds (4408)', async () => {
      const socket = openSocket(plain.wsUrl);
      const closed = closeOf(socket);
      await once(socket, 'open');
      const opened = Date.now();
      const { code } = await closed;
      expect(code).toBe(4408);
      expect(Date.now() - opened).toBeLessThan(5000);
    });
  });

  describe('open sockets per client address', () => {
    it('with a limit of 2, the third socket from one address is refused (429) and the first two still work', async () => {
      const limited = await api({ BACKUPS_API_MAX_SOCKETS_PER_ADDRESS: 2 });
      const job = await buildJob(db.orm.em, customer, { status: 'pending' });
      const vars = { id: String(job.id) };
      const first = subscribe(limited.wsClient({ token }), JOB_UPDATED, vars);
      const second = subscribe(limited.wsClient({ token }), JOB_UPDATED, vars);
      await Promise.all([first.waitFor(1), second.waitFor(1)]);

      const third = openSocket(limited.wsUrl);
      expect(await refusal(third)).toBe(429);

      await updateJob(db.orm.em, job.id, { status: 'running', phase: 'UPLOADING' });
      await limited.publish({ id: job.id, customerId: customer.id });
      for (const sub of [first, second]) {
        expect((await sub.waitFor(2)).map((r) => r.data?.jobUpdated.status)).toEqual([
          'PENDING',
          'RUNNING',
        ]);
      }

      // A socket that closes gives its place back.
      first.stop();
      await quietPeriod(300); // the lazy client closes its socket once nothing is subscribed
      const again = openSocket(limited.wsUrl);
      expect(await refusal(again)).toBeNull();
      again.close();
      second.stop();
      await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
    });

    it('behind the proxy (BACKUPS_TRUST_PROXY) the address is the forwarded one, as over HTTP', async () => {
      const proxied = await api({
        BACKUPS_API_MAX_SOCKETS_PER_ADDRESS: 2,
        BACKUPS_TRUST_PROXY: true,
      });
      const from = (address: string) => openSocket(proxied.wsUrl, { 'x-forwarded-for': address });
      const held = [from('203.0.113.7'), from('203.0.113.7')];
      expect(await Promise.all(held.map(refusal))).toEqual([null, null]);
      expect(await refusal(from('203.0.113.7'))).toBe(429);
      const other = from('203.0.113.8');
      expect(await refusal(other)).toBeNull();
      for (const socket of [...held, other]) socket.close();
    });
  });

  describe('live subscriptions per viewer', () => {
    it('with a limit of 2, a third subscription of one token gets an error; another token is not held back; ending one frees a place', async () => {
      const limited = await api({ BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER: 2 });
      const other = await customerToken(db.orm.em, customer);
      const job = await buildJob(db.orm.em, customer, { status: 'pending' });
      const vars = { id: String(job.id) };
      const one = limited.wsClient({ token });
      const first = subscribe(one, JOB_UPDATED, vars);
      const second = subscribe(one, JOB_UPDATED, vars);
      await Promise.all([first.waitFor(1), second.waitFor(1)]);

      // Another socket of the same token: the limit is the token's, not the socket's.
      const two = limited.wsClient({ token });
      const third = subscribe(two, JOB_UPDATED, vars);
      const refused = await within(third.ended, 5000).then(
        () => null,
        (error: Error) => JSON.parse(error.message),
      );
      expect(refused).toEqual([
        {
          message:
            'At most 2 subscriptions may be live at once for one session or API token: end one before starting another.',
          extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
        },
      ]);
      expect(third.results).toEqual([]);

      // Queries over the same socket are not subscriptions: still answered.
      const me = subscribe(two, '{ me { id } }');
      await me.ended;
      expect(me.results[0]?.data).toEqual({ me: { id: String(customer.id) } });

      const another = subscribe(limited.wsClient({ token: other }), JOB_UPDATED, vars);
      expect((await another.waitFor(1))[0]?.data?.jobUpdated.status).toBe('PENDING');

      // `one` stays open with `second`: the place comes back with the subscription alone.
      first.stop();
      await quietPeriod(200); // the complete message reaches the api
      const fourth = subscribe(two, JOB_UPDATED, vars);
      expect((await fourth.waitFor(1))[0]?.data?.jobUpdated.status).toBe('PENDING');

      // The streams still open are live.
      await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
      await limited.publish({ id: job.id, customerId: customer.id });
      await Promise.all([second.ended, another.ended, fourth.ended]);
      expect(fourth.results.map((r) => r.data?.jobUpdated.status)).toEqual([
        'PENDING',
        'COMPLETED',
      ]);
    });

    it('a socket that closes gives back the places of its live subscriptions', async () => {
      const limited = await api({ BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER: 2 });
      const job = await buildJob(db.orm.em, customer, { status: 'pending' });
      const vars = { id: String(job.id) };
      const gone = limited.wsClient({ token });
      const live = [subscribe(gone, JOB_UPDATED, vars), subscribe(gone, JOB_UPDATED, vars)];
      await Promise.all(live.map((sub) => sub.waitFor(1)));
      await gone.dispose();
      await quietPeriod(200);

      const next = limited.wsClient({ token });
      const again = [subscribe(next, JOB_UPDATED, vars), subscribe(next, JOB_UPDATED, vars)];
      for (const sub of again) {
        expect((await sub.waitFor(1))[0]?.data?.jobUpdated.status).toBe('PENDING');
      }
      for (const sub of again) sub.stop();
      await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
    });

    it('a subscription that ended by itself gives its place back', async () => {
      const limited = await api({ BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER: 2 });
      const done = await buildJob(db.orm.em, customer, { status: 'completed' });
      const client = limited.wsClient({ token });
      // Holds one place, and the socket open, throughout.
      const held = subscribe(client, 'subscription { customerJobs { id } }');
      await quietPeriod(200);
      for (let i = 0; i < 3; i++) {
        const sub = subscribe(client, JOB_UPDATED, { id: String(done.id) });
        await sub.ended;
        expect(sub.results.map((r) => r.data?.jobUpdated.status)).toEqual(['COMPLETED']);
      }
      held.stop();
    });
  });
});
