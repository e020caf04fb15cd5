import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  buildJob,
  buildSignInCustomer,
  buildSnapshot,
  customerToken,
  snapshotHex,
} from './support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const DAY = 86_400_000;
const SNAPSHOTS = `query($source: SnapshotSource) {
  me { snapshots(source: $source) { id shortId source scope createdAt label sizeBytes } }
}`;

describe('the snapshot lists come from the catalog', () => {
  let db: TestDatabase;
  let api: TestApi;
  let customer: ICustomer;
  let token: string;
  let manualNewestTime = new Date(0);
  const ids: { manual: string[]; daily: string[]; safety: string[] } = {
    manual: [],
    daily: [],
    safety: [],
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db });
    customer = await buildSignInCustomer(db.orm.em);
    token = await customerToken(db.orm.em, customer);
    const neighbour = await buildSignInCustomer(db.orm.em);
    const now = Date.now();
    // Inserted out of order; ids[] lists each source newest first.
    for (const age of [3, 1, 7, 2, 5, 4, 6]) {
      const s = await buildSnapshot(db.orm.em, customer, {
        source: 'manual',
        time: new Date(now - age * 3_600_000),
        label: `manual ${age}h`,
        sizeBytes: 5_000_000_000 + age,
      });
      ids.manual[age - 1] = s.snapshotId;
      if (age === 1) manualNewestTime = s.time;
    }
    for (const age of [0, 1, 10, 29, 31, 45]) {
      const s = await buildSnapshot(db.orm.em, customer, {
        source: 'daily',
        time: new Date(now - age * DAY - 60_000),
      });
      ids.daily.push(s.snapshotId);
    }
    for (const age of [1, 2, 3, 4]) {
      const s = await buildSnapshot(db.orm.em, customer, {
        source: 'safety',
        time: new Date(now - age * DAY - 30_000),
        scope: 'files',
      });
      ids.safety.push(s.snapshotId);
    }
    // The neighbour's rows are newer than everything above: they must never show.
    for (const source of ['manual', 'daily', 'safety'] as const) {
      await buildSnapshot(db.orm.em, neighbour, { source, time: new Date(now) });
    }
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  async function list(source?: string) {
    const result = await api.gql(SNAPSHOTS, { source }, { token });
    expect(result.errors).toBeUndefined();
    return result.data?.me.snapshots as { id: string; source: string; createdAt: string }[];
  }

  it('MANUAL: the 5 newest, newest first, with their details', async () => {
    const manual = await list('MANUAL');
    expect(manual.map((s) => s.id)).toEqual(ids.manual.slice(0, 5));
    expect(manual[0]).toMatchObject({
      shortId: ids.manual[0]?.slice(0, 8),
      source: 'MANUAL',
      scope: 'BOTH',
      label: 'manual 1h',
      sizeBytes: 5_000_000_001, // more than 2^31
    });
    // The instant stored, in UTC, to the second (DATETIME keeps no milliseconds).
    expect(manual[0]?.createdAt.slice(0, 19)).toBe(manualNewestTime.toISOString().slice(0, 19));
  });

  it('DAILY: only the last 30 days, newest first', async () => {
    const daily = await list('DAILY');
    expect(daily.map((s) => s.id)).toEqual(ids.daily.slice(0, 4));
  });

  it('SAFETY: the 3 newest undo points', async () => {
    const safety = await list('SAFETY');
    expect(safety.map((s) => s.id)).toEqual(ids.safety.slice(0, 3));
    expect(safety.every((s) => s.source === 'SAFETY')).toBe(true);
  });

  it("no source: all of them, newest first, and never another customer's", async () => {
    const all = await list();
    expect(all).toHaveLength(5 + 4 + 3);
    const times = all.map((s) => Date.parse(s.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    const own = new Set([...ids.manual, ...ids.daily, ...ids.safety]);
    expect(all.every((s) => own.has(s.id))).toBe(true);
  });

  it("a job's snapshot resolves from its own customer's catalog only", async () => {
    const neighbour = await buildSignInCustomer(db.orm.em);
    const foreign = await buildSnapshot(db.orm.em, neighbour);
    const own = await buildJob(db.orm.em, customer, { snapshotId: ids.manual[0] ?? null });
    const pointing = await buildJob(db.orm.em, customer, { snapshotId: foreign.snapshotId });
    const unknown = await buildJob(db.orm.em, customer, { snapshotId: snapshotHex() });
    const query = 'query($id: ID!) { job(id: $id) { snapshot { id } safetySnapshot { id } } }';
    const read = async (id: number) => (await api.gql(query, { id: String(id) }, { token })).data;
    expect(await read(own.id)).toEqual({
      job: { snapshot: { id: ids.manual[0] }, safetySnapshot: null },
    });
    expect(await read(pointing.id)).toEqual({ job: { snapshot: null, safetySnapshot: null } });
    expect(await read(unknown.id)).toEqual({ job: { snapshot: null, safetySnapshot: null } });
  });

  it('a list of jobs with their snapshots, aliased 15 times, reads the catalog once per list, not once per job', async () => {
    const busy = await buildSignInCustomer(db.orm.em);
    const busyToken = await customerToken(db.orm.em, busy);
    const expected: { id: string; snapshot: { id: string } | null }[] = [];
    for (let i = 0; i < 50; i++) {
      const snapshot = await buildSnapshot(db.orm.em, busy);
      const job = await buildJob(db.orm.em, busy, {
        snapshotId: snapshot.snapshotId,
        createdAt: new Date(Date.now() - i * 1000),
      });
      expected.push({ id: String(job.id), snapshot: { id: snapshot.snapshotId } });
    }
    const aliases = Array.from(
      { length: 15 },
      (_, i) => `a${i}: jobs(limit: 50) { id snapshot { id } safetySnapshot { id } }`,
    );
    // Every statement this api process sends to MariaDB while the request runs.
    const statements: string[] = [];
    const knex = db.orm.em.getConnection().getKnex();
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    knex.on('query', onQuery);
    let result: Awaited<ReturnType<TestApi['gql']>>;
    try {
      result = await api.gql(`{ me { ${aliases.join(' ')} } }`, {}, { token: busyToken });
    } finally {
      knex.off('query', onQuery);
    }
    expect(result.errors).toBeUndefined();
    for (let i = 0; i < 15; i++) {
      expect(result.data?.me[`a${i}`]).toEqual(
        expected.map((j) => ({ ...j, safetySnapshot: null })),
      );
    }
    // 15 lists of 50 jobs: at most one catalog read per list (lists that arrive together share
    // one), where one per job would be 750.
    const catalogReads = statements.filter((sql) => /\bfrom `snapshots`/i.test(sql));
    expect(catalogReads.length).toBeGreaterThanOrEqual(1);
    expect(catalogReads.length).toBeLessThanOrEqual(15);
    expect(statements.length).toBeLessThan(40);
  });

  it('jobs are newest first and the limit is clamped to 1..50', async () => {
    const other = await buildSignInCustomer(db.orm.em);
    const otherToken = await customerToken(db.orm.em, other);
    const now = Date.now();
    const made = [];
    for (let i = 0; i < 55; i++) {
      made.push(await buildJob(db.orm.em, other, { createdAt: new Date(now - i * 1000) }));
    }
    const query = 'query($limit: Int) { me { jobs(limit: $limit) { id } } }';
    const jobs = async (limit?: number): Promise<string[]> => {
      const result = await api.gql(query, { limit }, { token: otherToken });
      return (result.data?.me.jobs ?? []).map((j: { id: string }) => j.id);
    };
    expect(await jobs()).toEqual(made.slice(0, 10).map((j) => String(j.id)));
    expect(await jobs(0)).toHaveLength(1);
    expect(await jobs(1000)).toHaveLength(50);
  });

  it('a failure inside the server answers "Unexpected error." and tells nothing of it', async () => {
    const conn = db.orm.em.getConnection();
    await conn.execute('rename table snapshots to snapshots_elsewhere');
    try {
      const result = await api.gql(SNAPSHOTS, {}, { token });
      expect(result.errors).toEqual([
        expect.objectContaining({
          message: 'Unexpected error.',
          path: ['me', 'snapshots'],
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        }),
      ]);
      // Neither the SQL, the table, the driver's error nor a stack reaches the client.
      expect(JSON.stringify(result.errors)).not.toMatch(
        /snapshots_elsewhere|select|ER_NO_SUCH_TABLE|doesn't exist|\.js:\d/i,
      );
    } finally {
      await conn.execute('rename table snapshots_elsewhere to snapshots');
    }
    expect(await list('MANUAL')).toHaveLength(5);
  });
});
