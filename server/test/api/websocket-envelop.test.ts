import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  buildJob,
  buildSignInCustomer,
  buildSnapshot,
  customerToken,
  updateJob,
} from './support/factories.js';
import { startTestApi, subscribe, type TestApi } from './support/test-api.js';

const JOB_UPDATED = `subscription($id: ID!) {
  jobUpdated(id: $id) { id status snapshot { id } }
}`;

describe("WebSocket operations run through yoga's own envelop (yoga.getEnveloped)", () => {
  let db: TestDatabase;
  let api: TestApi;
  let customer: ICustomer;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db });
    customer = await buildSignInCustomer(db.orm.em);
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  /** The SQL the api sends for catalog rows while `during` runs (the api uses the test's ORM). */
  async function catalogReads(during: () => Promise<void>): Promise<number> {
    const knex = db.orm.em.getConnection().getKnex();
    let reads = 0;
    const count = (query: { sql?: string }) => {
      if (/^select\b.*\bfrom `snapshots`/is.test(query.sql ?? '')) reads++;
    };
    knex.on('query', count);
    try {
      await during();
    } finally {
      knex.off('query', count);
    }
    return reads;
  }

  it('a query over the socket is answered as over HTTP', async () => {
    const token = await customerToken(db.orm.em, customer);
    const sub = subscribe(api.wsClient({ token }), '{ me { id } }');
    await sub.ended;
    expect(sub.results).toEqual([{ data: { me: { id: String(customer.id) } } }]);
  });

  it('subscribers with the same operation and rights share one execution of each event: one catalog read for three of them, one more for an admin', async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const vars = { id: String(job.id) };
    const tokens = await Promise.all([1, 2, 3].map(() => customerToken(db.orm.em, customer)));
    const subs = [
      ...tokens.map((token) => subscribe(api.wsClient({ token }), JOB_UPDATED, vars)),
      subscribe(api.wsClient({ token: await adminToken(db.orm.em) }), JOB_UPDATED, vars),
    ];
    await Promise.all(subs.map((sub) => sub.waitFor(1)));
    const snapshot = await buildSnapshot(db.orm.em, customer);

    const reads = await catalogReads(async () => {
      await updateJob(db.orm.em, job.id, {
        status: 'completed',
        snapshotId: snapshot.snapshotId,
        finishedAt: new Date(),
      });
      await api.publish({ id: job.id, customerId: customer.id });
      await Promise.all(subs.map((sub) => sub.ended));
    });

    for (const sub of subs) {
      expect(sub.results.map((r) => r.data?.jobUpdated)).toEqual([
        { id: String(job.id), status: 'RUNNING', snapshot: null },
        { id: String(job.id), status: 'COMPLETED', snapshot: { id: snapshot.snapshotId } },
      ]);
    }
    // Without the shared execution (api/shared-subscription.ts) each subscriber reads: 4.
    expect(reads).toBe(2);
  });

  it("an unexpected error in an event's execution reaches the subscribers masked, as over HTTP", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const snapshot = await buildSnapshot(db.orm.em, customer);
    const vars = { id: String(job.id) };
    const tokens = await Promise.all([1, 2].map(() => customerToken(db.orm.em, customer)));
    const subs = tokens.map((token) => subscribe(api.wsClient({ token }), JOB_UPDATED, vars));
    await Promise.all(subs.map((sub) => sub.waitFor(1)));
    // The job's snapshot is read from the catalog; with the table away, MariaDB's error (which
    // names the table) is what the resolver throws.
    const connection = db.orm.em.getConnection();
    await connection.execute('rename table snapshots to snapshots_away');
    try {
      await updateJob(db.orm.em, job.id, { snapshotId: snapshot.snapshotId });
      await api.publish({ id: job.id, customerId: customer.id });
      await Promise.all(subs.map((sub) => sub.waitFor(2)));
    } finally {
      await connection.execute('rename table snapshots_away to snapshots');
    }
    for (const sub of subs) {
      sub.stop();
      const event = sub.results[1];
      expect(event?.data?.jobUpdated).toEqual({
        id: String(job.id),
        status: 'RUNNING',
        snapshot: null,
      });
      expect(event?.errors?.map((e) => [e.message, e.path])).toEqual([
        ['Unexpected error.', ['jobUpdated', 'snapshot']],
      ]);
      expect(JSON.stringify(event)).not.toContain('snapshots');
    }
  });
});
