import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiToken } from '../../src/auth/api-token.entity.js';
import { sha256Hex } from '../../src/auth/credentials.js';
import { Session } from '../../src/auth/session.entity.js';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  buildJob,
  buildSignInCustomer,
  buildSnapshot,
  customerToken,
  PASSWORD,
  updateJob,
} from './support/factories.js';
import {
  credentialReads,
  quietPeriod,
  type Subscription,
  sessionIdOf,
  startTestApi,
  subscribe,
  type TestApi,
  within,
} from './support/test-api.js';

const JOB_UPDATED = `subscription($id: ID!) {
  jobUpdated(id: $id) { id status phase progress snapshot { id } }
}`;
const CUSTOMER_JOBS = `subscription($customerId: ID) {
  customerJobs(customerId: $customerId) { id status phase }
}`;

describe('job subscriptions over graphql-ws', () => {
  let db: TestDatabase;
  let api: TestApi;
  let customer: ICustomer;
  let token: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Sessions are signed in freely here (the sign-in limit has tests of its own).
    api = await startTestApi({ db, config: { BACKUPS_SIGNIN_LIMIT_PER_EMAIL: 100 } });
    customer = await buildSignInCustomer(db.orm.em);
    token = await customerToken(db.orm.em, customer);
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  /** Revokes one of the customer's tokens as the customer does: revokeApiToken, signed in. */
  async function revokeToken(secret: string): Promise<void> {
    const row = await db.orm.em.fork().findOneOrFail(ApiToken, { tokenHash: sha256Hex(secret) });
    const cookie = await api.signIn(customer.email, PASSWORD);
    const revoked = await api.gql(
      'mutation($id: ID!) { revokeApiToken(id: $id) }',
      { id: String(row.id) },
      { cookie },
    );
    expect(revoked.data?.revokeApiToken).toBe(true);
  }

  /** A session cookie whose session expires at the next whole second at least `ms` away. */
  async function expiringSession(ms: number): Promise<{ cookie: string; expiresAt: Date }> {
    const cookie = await api.signIn(customer.email, PASSWORD);
    // The column keeps whole seconds.
    const expiresAt = new Date(Math.ceil((Date.now() + ms) / 1000) * 1000);
    await db.orm.em.fork().nativeUpdate(Session, { id: sessionIdOf(cookie) }, { expiresAt });
    return { cookie, expiresAt };
  }

  /** Changes the row, then announces it, as the worker does. */
  async function change(id: number, changes: Parameters<typeof updateJob>[2]) {
    await updateJob(db.orm.em, id, changes);
    await api.publish({ id, customerId: customer.id });
  }

  it('jobUpdated gives the current state first, then each change in order, and completes after COMPLETED', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'pending' });
    const client = api.wsClient({ token });
    const sub = subscribe(client, JOB_UPDATED, { id: String(job.id) });
    await sub.waitFor(1);

    await change(job.id, { status: 'running', phase: 'DUMPING_DATABASE', startedAt: new Date() });
    await sub.waitFor(2);
    await change(job.id, { phase: 'UPLOADING', progress: 0.5 });
    await sub.waitFor(3);
    const snapshot = await buildSnapshot(db.orm.em, customer);
    await change(job.id, {
      status: 'completed',
      phase: null,
      progress: 1,
      snapshotId: snapshot.snapshotId,
      finishedAt: new Date(),
    });
    await sub.ended;

    expect(sub.results.map((r) => r.data?.jobUpdated)).toEqual([
      { id: String(job.id), status: 'PENDING', phase: null, progress: 0, snapshot: null },
      {
        id: String(job.id),
        status: 'RUNNING',
        phase: 'DUMPING_DATABASE',
        progress: 0,
        snapshot: null,
      },
      { id: String(job.id), status: 'RUNNING', phase: 'UPLOADING', progress: 0.5, snapshot: null },
      {
        id: String(job.id),
        status: 'COMPLETED',
        phase: null,
        progress: 1,
        snapshot: { id: snapshot.snapshotId },
      },
    ]);
  });

  it('a job that already ended is delivered once, then the stream completes', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'completed' });
    const sub = subscribe(api.wsClient({ token }), JOB_UPDATED, { id: String(job.id) });
    await sub.ended;
    expect(sub.results).toHaveLength(1);
    expect(sub.results[0]?.data?.jobUpdated).toMatchObject({ status: 'COMPLETED', progress: 1 });
  });

  it("subscribing to another customer's job is an error and nothing is delivered", async () => {
    const other = await buildSignInCustomer(db.orm.em);
    const theirs = await buildJob(db.orm.em, other, { status: 'pending' });
    const sub = subscribe(api.wsClient({ token }), JOB_UPDATED, { id: String(theirs.id) });
    const outcome = await sub.ended.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    await updateJob(db.orm.em, theirs.id, { status: 'running' });
    await api.publish({ id: theirs.id, customerId: other.id });
    await quietPeriod();
    const errors = sub.results.flatMap((r) => r.errors ?? []);
    expect(sub.results.every((r) => !r.data)).toBe(true);
    expect(errors.length > 0 || outcome !== 'completed').toBe(true);
    expect(JSON.stringify({ errors, outcome })).toContain('NOT_FOUND');
  });

  it('without credentials the socket is closed (4403) and no state is sent', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'completed' });
    const sub = subscribe(api.wsClient(), JOB_UPDATED, { id: String(job.id) });
    const outcome = await sub.ended.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    expect(sub.results).toEqual([]);
    expect(outcome).toMatch(/^closed 4403: Forbidden/);
  });

  it('a token revoked during a subscription ends the stream at the next event', async () => {
    const own = await customerToken(db.orm.em, customer);
    const job = await buildJob(db.orm.em, customer, { status: 'pending' });
    const sub = subscribe(api.wsClient({ token: own }), JOB_UPDATED, { id: String(job.id) });
    await sub.waitFor(1);
    await revokeToken(own);
    await change(job.id, { status: 'running', phase: 'UPLOADING' });
    await sub.ended;
    expect(sub.results).toHaveLength(2);
    expect(sub.results[1]?.data ?? null).toBeNull();
    expect(sub.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it('a token revoked during a subscription ends the stream within a second, with no job event after it', async () => {
    const own = await customerToken(db.orm.em, customer);
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const vars = { id: String(job.id) };
    const subs = [
      subscribe(api.wsClient({ token: own }), JOB_UPDATED, vars),
      subscribe(api.wsClient({ token: own }), CUSTOMER_JOBS),
    ];
    // Both start with the job's state now (customerJobs: the job in progress).
    await Promise.all(subs.map((sub) => sub.waitFor(1)));

    const revokedAt = Date.now();
    await revokeToken(own);
    await within(Promise.all(subs.map((sub) => sub.ended)), 1000);
    expect(Date.now() - revokedAt).toBeLessThan(1000);

    const [job1, all] = subs as [Subscription, Subscription];
    expect(job1.results.map((r) => r.data?.jobUpdated?.status ?? null)).toEqual(['RUNNING', null]);
    expect(all.results.map((r) => r.data?.customerJobs ?? null)).toEqual([
      { id: String(job.id), status: 'RUNNING', phase: null },
      null,
    ]);
    for (const sub of subs) {
      expect(sub.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it("signing out ends that session's subscriptions within a second, and no one else's", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const vars = { id: String(job.id) };
    const leaving = await api.signIn(customer.email, PASSWORD);
    const staying = await api.signIn(customer.email, PASSWORD);
    const gone = subscribe(api.wsClient({ cookie: leaving }), JOB_UPDATED, vars);
    const kept = subscribe(api.wsClient({ cookie: staying }), JOB_UPDATED, vars);
    await Promise.all([gone.waitFor(1), kept.waitFor(1)]);

    const signedOutAt = Date.now();
    const signOut = await api.gql('mutation { signOut }', {}, { cookie: leaving });
    expect(signOut.data?.signOut).toBe(true);
    await within(gone.ended, 1000);
    expect(Date.now() - signedOutAt).toBeLessThan(1000);
    expect(gone.results).toHaveLength(2);
    expect(gone.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    await change(job.id, { phase: 'UPLOADING', progress: 0.5 });
    await kept.waitFor(2);
    kept.stop();
    expect(kept.results.map((r) => r.data?.jobUpdated.phase)).toEqual([null, 'UPLOADING']);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it("a session's subscriptions end at its expiry, with no event and no read of the session", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const { cookie, expiresAt } = await expiringSession(2000);
    const sub = subscribe(api.wsClient({ cookie }), JOB_UPDATED, { id: String(job.id) });
    await sub.waitFor(1);

    const reads = await credentialReads(db, () => within(sub.ended, 4000));
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(Date.now()).toBeLessThan(expiresAt.getTime() + 1000);
    expect(reads).toBe(0);
    expect(sub.results).toHaveLength(2);
    expect(sub.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it("progress events read no session or token: each is only authorised against the viewer's rights", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const vars = { id: String(job.id) };
    const admin = await adminToken(db.orm.em);
    const cookie = await api.signIn(customer.email, PASSWORD);
    const subs = [
      subscribe(api.wsClient({ token }), JOB_UPDATED, vars),
      subscribe(api.wsClient({ token: admin }), JOB_UPDATED, vars),
      subscribe(api.wsClient({ cookie }), JOB_UPDATED, vars),
      subscribe(api.wsClient({ cookie }), CUSTOMER_JOBS),
    ];
    // Each starts with the job's state now (customerJobs: the job in progress).
    for (const sub of subs) await sub.waitFor(1);

    const reads = await credentialReads(db, async () => {
      for (let i = 1; i <= 5; i++) {
        await change(job.id, { phase: 'UPLOADING', progress: i / 10 });
        for (const sub of subs) await sub.waitFor(1 + i);
      }
    });
    for (const sub of subs) sub.stop();
    expect(reads).toBe(0);
    for (const sub of subs.slice(0, 3)) {
      expect(sub.results.map((r) => r.data?.jobUpdated.progress)).toEqual([
        0, 0.1, 0.2, 0.3, 0.4, 0.5,
      ]);
    }
    expect(subs[3]?.results).toHaveLength(6);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it('subscribers of one job are checked one by one: a revoked token and an expired session end only their own streams', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'pending' });
    const revoked = await customerToken(db.orm.em, customer);
    const kept = await customerToken(db.orm.em, customer);
    const admin = await adminToken(db.orm.em);
    const { cookie } = await expiringSession(2000);
    const vars = { id: String(job.id) };
    const subs = {
      revoked: subscribe(api.wsClient({ token: revoked }), JOB_UPDATED, vars),
      kept: subscribe(api.wsClient({ token: kept }), JOB_UPDATED, vars),
      admin: subscribe(api.wsClient({ token: admin }), JOB_UPDATED, vars),
      expired: subscribe(api.wsClient({ cookie }), JOB_UPDATED, vars),
      session: subscribe(
        api.wsClient({ cookie: await api.signIn(customer.email, PASSWORD) }),
        JOB_UPDATED,
        vars,
      ),
    };
    for (const sub of Object.values(subs)) await sub.waitFor(1);

    await revokeToken(revoked);
    await subs.revoked.ended;
    await subs.expired.ended; // at its expiry
    await change(job.id, { status: 'running', phase: 'UPLOADING' });
    for (const sub of [subs.kept, subs.admin, subs.session]) await sub.waitFor(2);
    await change(job.id, { phase: 'VERIFYING', progress: 0.9 });
    for (const sub of [subs.kept, subs.admin, subs.session]) await sub.waitFor(3);
    await quietPeriod(200);

    for (const ended of [subs.revoked, subs.expired]) {
      expect(ended.results).toHaveLength(2);
      expect(ended.results[1]?.data ?? null).toBeNull();
      expect(ended.results[1]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    for (const live of [subs.kept, subs.admin, subs.session]) {
      expect(live.results.map((r) => r.data?.jobUpdated)).toEqual([
        { id: String(job.id), status: 'PENDING', phase: null, progress: 0, snapshot: null },
        { id: String(job.id), status: 'RUNNING', phase: 'UPLOADING', progress: 0, snapshot: null },
        {
          id: String(job.id),
          status: 'RUNNING',
          phase: 'VERIFYING',
          progress: 0.9,
          snapshot: null,
        },
      ]);
    }
    for (const sub of [subs.kept, subs.admin, subs.session]) sub.stop();
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it('a subscriber that joins a job others already watch gets the state now first, and the same changes after', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'pending' });
    const vars = { id: String(job.id) };
    const early = subscribe(api.wsClient({ token }), JOB_UPDATED, vars);
    await early.waitFor(1);
    await change(job.id, { status: 'running', phase: 'DUMPING_DATABASE' });
    await early.waitFor(2);
    const late = subscribe(api.wsClient({ token }), JOB_UPDATED, vars);
    await late.waitFor(1);
    await change(job.id, { phase: 'UPLOADING', progress: 0.5 });
    await Promise.all([early.waitFor(3), late.waitFor(2)]);
    await change(job.id, { status: 'completed', phase: null, progress: 1, finishedAt: new Date() });
    await Promise.all([early.ended, late.ended]);

    const running = { id: String(job.id), status: 'RUNNING', snapshot: null };
    expect(early.results.map((r) => r.data?.jobUpdated)).toEqual([
      { id: String(job.id), status: 'PENDING', phase: null, progress: 0, snapshot: null },
      { ...running, phase: 'DUMPING_DATABASE', progress: 0 },
      { ...running, phase: 'UPLOADING', progress: 0.5 },
      { id: String(job.id), status: 'COMPLETED', phase: null, progress: 1, snapshot: null },
    ]);
    expect(late.results.map((r) => r.data?.jobUpdated)).toEqual([
      { ...running, phase: 'DUMPING_DATABASE', progress: 0 },
      { ...running, phase: 'UPLOADING', progress: 0.5 },
      { id: String(job.id), status: 'COMPLETED', phase: null, progress: 1, snapshot: null },
    ]);
  });

  it('subscribers of one job with different selections or variables each get their own', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'pending' });
    const other = await buildJob(db.orm.em, customer, { status: 'completed' });
    const narrow = 'subscription($id: ID!) { jobUpdated(id: $id) { status } }';
    const wide = subscribe(api.wsClient({ token }), JOB_UPDATED, { id: String(job.id) });
    const small = subscribe(api.wsClient({ token }), narrow, { id: String(job.id) });
    const elsewhere = subscribe(api.wsClient({ token }), narrow, { id: String(other.id) });
    await Promise.all([wide.waitFor(1), small.waitFor(1), elsewhere.waitFor(1)]);
    await change(job.id, { status: 'running', phase: 'UPLOADING', progress: 0.25 });
    await Promise.all([wide.waitFor(2), small.waitFor(2)]);
    await quietPeriod(200);
    for (const sub of [wide, small, elsewhere]) sub.stop();

    expect(wide.results.map((r) => r.data?.jobUpdated)).toEqual([
      { id: String(job.id), status: 'PENDING', phase: null, progress: 0, snapshot: null },
      { id: String(job.id), status: 'RUNNING', phase: 'UPLOADING', progress: 0.25, snapshot: null },
    ]);
    expect(small.results.map((r) => r.data?.jobUpdated)).toEqual([
      { status: 'PENDING' },
      { status: 'RUNNING' },
    ]);
    expect(elsewhere.results.map((r) => r.data?.jobUpdated)).toEqual([{ status: 'COMPLETED' }]);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
  });

  it("yoga's limits apply over the socket too: too many aliases are refused", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'completed' });
    const aliases = Array.from({ length: 16 }, (_, i) => `a${i}: status`).join(' ');
    const sub = subscribe(
      api.wsClient({ token }),
      `subscription($id: ID!) { jobUpdated(id: $id) { ${aliases} } }`,
      { id: String(job.id) },
    );
    const outcome = await sub.ended.then(
      () => 'completed',
      () => 'refused',
    );
    // Without armor's limit this would deliver the job's state and complete.
    expect(sub.results.filter((r) => r.data)).toEqual([]);
    expect(outcome).toBe('refused');
  });

  it('the session cookie authenticates a socket from our own origin, not from another site', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'completed' });
    const cookie = await api.signIn(customer.email, PASSWORD);

    const own = subscribe(api.wsClient({ cookie }), JOB_UPDATED, { id: String(job.id) });
    await own.ended;
    expect(own.results[0]?.data?.jobUpdated.status).toBe('COMPLETED');

    const hijack = subscribe(
      api.wsClient({ cookie, origin: 'https://evil.example' }),
      JOB_UPDATED,
      { id: String(job.id) },
    );
    const outcome = await hijack.ended.then(
      () => 'completed',
      (error: unknown) => String((error as { code?: number }).code ?? error),
    );
    expect(hijack.results).toEqual([]);
    expect(outcome).not.toBe('completed');
  });

  it("customerJobs delivers every change of the customer's jobs and nothing of anyone else's", async () => {
    const sub = subscribe(api.wsClient({ token }), CUSTOMER_JOBS);
    await quietPeriod(300); // let the subscription reach Redis
    const other = await buildSignInCustomer(db.orm.em);
    const theirs = await buildJob(db.orm.em, other, { status: 'pending' });
    const mine = await buildJob(db.orm.em, customer, { status: 'pending' });

    await change(mine.id, { status: 'running', phase: 'UPLOADING' });
    // A foreign job announced on this customer's channel is not shown.
    await api.publish({ id: theirs.id, customerId: customer.id });
    await change(mine.id, { status: 'completed', phase: null, finishedAt: new Date() });
    await sub.waitFor(2);
    await quietPeriod();
    sub.stop();

    expect(sub.results.map((r) => r.data?.customerJobs)).toEqual([
      { id: String(mine.id), status: 'RUNNING', phase: 'UPLOADING' },
      { id: String(mine.id), status: 'COMPLETED', phase: null },
    ]);
  });

  it('customerJobs starts with the job in progress, so a client that reconnects mid-job sees it at once', async () => {
    const running = await buildJob(db.orm.em, customer, { status: 'running' });
    await change(running.id, { status: 'running', phase: 'DOWNLOADING' });
    const sub = subscribe(api.wsClient({ token }), CUSTOMER_JOBS);
    await sub.waitFor(1);
    expect(sub.results[0]?.data?.customerJobs).toEqual({
      id: String(running.id),
      status: 'RUNNING',
      phase: 'DOWNLOADING',
    });
    await change(running.id, { status: 'completed', phase: null, finishedAt: new Date() });
    await sub.waitFor(2);
    sub.stop();
    expect(sub.results[1]?.data?.customerJobs).toMatchObject({ status: 'COMPLETED' });
  });

  it('a job created through the api is announced at once on customerJobs (other tabs see it)', async () => {
    const sub = subscribe(api.wsClient({ token }), CUSTOMER_JOBS);
    await quietPeriod(300);
    const created = await api.gql(
      'mutation { createBackup(scope: DATABASE) { ... on CreateBackupSuccess { job { id } } } }',
      {},
      { token },
    );
    const id = created.data?.createBackup.job.id;
    expect(id).toBeDefined();
    await sub.waitFor(1);
    sub.stop();
    expect(sub.results.map((r) => r.data?.customerJobs)).toContainEqual({
      id,
      status: 'PENDING',
      phase: null,
    });
    await change(Number(id), { status: 'cancelled', finishedAt: new Date() });
  });

  it('customerJobs subscribers of one customer share its changes; a revoked token ends only its own stream', async () => {
    const revoked = await customerToken(db.orm.em, customer);
    const admin = await adminToken(db.orm.em);
    const cookie = await api.signIn(customer.email, PASSWORD);
    const job = await buildJob(db.orm.em, customer, { status: 'pending' });
    const subs = {
      token: subscribe(api.wsClient({ token }), CUSTOMER_JOBS),
      revoked: subscribe(api.wsClient({ token: revoked }), CUSTOMER_JOBS),
      admin: subscribe(api.wsClient({ token: admin }), CUSTOMER_JOBS, {
        customerId: String(customer.id),
      }),
      session: subscribe(api.wsClient({ cookie }), CUSTOMER_JOBS),
    };
    // Each starts with the job in progress: from then on it hears every change.
    for (const sub of Object.values(subs)) await sub.waitFor(1);
    await change(job.id, { status: 'running', phase: 'DUMPING_DATABASE' });
    for (const sub of Object.values(subs)) await sub.waitFor(2);

    await revokeToken(revoked);
    await change(job.id, { status: 'completed', phase: null, finishedAt: new Date() });
    await subs.revoked.ended;
    for (const sub of [subs.token, subs.admin, subs.session]) await sub.waitFor(3);
    await quietPeriod(200);
    for (const sub of [subs.token, subs.admin, subs.session]) sub.stop();

    const pending = { id: String(job.id), status: 'PENDING', phase: null };
    const running = { id: String(job.id), status: 'RUNNING', phase: 'DUMPING_DATABASE' };
    expect(subs.revoked.results).toHaveLength(3);
    expect(subs.revoked.results.slice(0, 2).map((r) => r.data?.customerJobs)).toEqual([
      pending,
      running,
    ]);
    expect(subs.revoked.results[2]?.data ?? null).toBeNull();
    expect(subs.revoked.results[2]?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    for (const sub of [subs.token, subs.admin, subs.session]) {
      expect(sub.results.map((r) => r.data?.customerJobs)).toEqual([
        pending,
        running,
        { id: String(job.id), status: 'COMPLETED', phase: null },
      ]);
    }
  });

  it('customerJobs for another customer is FORBIDDEN', async () => {
    const other = await buildSignInCustomer(db.orm.em);
    const sub = subscribe(api.wsClient({ token }), CUSTOMER_JOBS, { customerId: String(other.id) });
    const outcome = await sub.ended.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    expect(sub.results.every((r) => !r.data)).toBe(true);
    expect(JSON.stringify({ results: sub.results, outcome })).toContain('FORBIDDEN');
  });
});
