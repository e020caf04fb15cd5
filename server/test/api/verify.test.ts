import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { SnapshotVerification } from '../../src/snapshots/verification.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  auditRows,
  buildSignInCustomer,
  buildSnapshot,
  customerToken,
  jobRows,
} from './support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const VERIFY = `mutation($snapshotId: ID!, $customerId: ID) {
  verifySnapshot(snapshotId: $snapshotId, customerId: $customerId) {
    __typename
    ... on VerifySnapshotSuccess { job { id kind scope source status snapshot { id } } }
    ... on JobInProgressError { job { id kind } }
    ... on InvalidInputError { field }
    ... on Error { code message }
  }
}`;
const SNAPSHOTS = `{ me { snapshots { id verification {
  status verifiedAt restoreSeconds files bytes tables problem } } } }`;

describe('verifySnapshot and Snapshot.verification', () => {
  let db: TestDatabase;
  let api: TestApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db, config: { BACKUPS_JOB_LIMIT_PER_CUSTOMER: 1000 } });
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  async function customerWithToken(host = 'node-a'): Promise<[ICustomer, string]> {
    const customer = await buildSignInCustomer(db.orm.em, { host });
    return [customer, await customerToken(db.orm.em, customer)];
  }

  it('queues a VERIFY job of the full snapshot id in the daily lane, audited; a second is JOB_IN_PROGRESS', async () => {
    const [customer, token] = await customerWithToken('node-v1');
    const snapshot = await buildSnapshot(db.orm.em, customer, { source: 'daily' });
    const result = await api.gql(VERIFY, { snapshotId: snapshot.shortId }, { token });
    expect(result.data?.verifySnapshot).toMatchObject({
      __typename: 'VerifySnapshotSuccess',
      job: {
        kind: 'VERIFY',
        source: 'DAILY',
        status: 'PENDING',
        snapshot: { id: snapshot.snapshotId },
      },
    });
    const id = result.data?.verifySnapshot.job.id as string;
    expect(await api.queuedJobIds('node-v1', 'daily')).toEqual([id]);
    expect(await api.queuedJobIds('node-v1')).toEqual([]);
    expect((await auditRows(db.orm.em, 'verify_requested')).at(-1)).toMatchObject({
      customerId: customer.id,
      targetId: id,
    });
    const again = await api.gql(VERIFY, { snapshotId: snapshot.snapshotId }, { token });
    expect(again.data?.verifySnapshot).toMatchObject({
      __typename: 'JobInProgressError',
      message: expect.stringMatching(/check of its backups/),
      job: { id, kind: 'VERIFY' },
    });
    // a drill does not stand in the way of a backup
    const backup = await api.gql(
      'mutation { createBackup(scope: BOTH) { __typename } }',
      {},
      { token },
    );
    expect(backup.data?.createBackup.__typename).toBe('CreateBackupSuccess');
    const waiting = await api.gql(SNAPSHOTS, {}, { token });
    expect(waiting.data?.me.snapshots[0].verification).toMatchObject({ status: 'PENDING' });
  });

  it("bad ids are INVALID_INPUT, another customer's snapshot NOT_FOUND: no job, nothing queued", async () => {
    const [owner] = await customerWithToken('node-v2');
    const [customer, token] = await customerWithToken('node-v2');
    const theirs = await buildSnapshot(db.orm.em, owner);
    for (const snapshotId of ['1;id', '$(id)', 'ABCDEF12', 'abc', 'a'.repeat(65)]) {
      const r = await api.gql(VERIFY, { snapshotId }, { token });
      expect(r.data?.verifySnapshot).toMatchObject({ code: 'INVALID_INPUT', field: 'snapshotId' });
    }
    const byId = await api.gql(VERIFY, { snapshotId: theirs.snapshotId }, { token });
    expect(byId.data?.verifySnapshot.code).toBe('NOT_FOUND');
    const forOther = await api.gql(
      VERIFY,
      { snapshotId: theirs.snapshotId, customerId: String(owner.id) },
      { token },
    );
    expect(forOther.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await jobRows(db.orm.em, customer)).toEqual([]);
    expect(await jobRows(db.orm.em, owner)).toEqual([]);
    expect(await api.queuedJobIds('node-v2', 'daily')).toEqual([]);
  });

  it('an admin token verifies any customer’s backup through customerId', async () => {
    const customer = await buildSignInCustomer(db.orm.em, { host: 'node-v3' });
    const snapshot = await buildSnapshot(db.orm.em, customer);
    const admin = await adminToken(db.orm.em);
    const r = await api.gql(
      VERIFY,
      { snapshotId: snapshot.snapshotId, customerId: String(customer.id) },
      { token: admin },
    );
    expect(r.data?.verifySnapshot.__typename).toBe('VerifySnapshotSuccess');
  });

  it('Snapshot.verification shows the newest verdict, null for a backup never drilled', async () => {
    const [customer, token] = await customerWithToken('node-v4');
    const good = await buildSnapshot(db.orm.em, customer, { time: new Date(Date.now() - 60_000) });
    const bad = await buildSnapshot(db.orm.em, customer, { time: new Date(Date.now() - 30_000) });
    const never = await buildSnapshot(db.orm.em, customer);
    const em = db.orm.em.fork();
    const at = new Date('2026-12-01T03:00:00Z');
    em.create(SnapshotVerification, {
      customer: customer.id,
      snapshotId: good.snapshotId,
      source: 'manual',
      status: 'failed',
      verifiedAt: new Date('2026-11-20T03:00:00Z'),
      problem: 'older',
    });
    em.create(SnapshotVerification, {
      customer: customer.id,
      snapshotId: good.snapshotId,
      source: 'manual',
      status: 'verified',
      verifiedAt: at,
      restoreSeconds: 41.5,
      files: 1200,
      bytes: 5_000_000_000,
      tables: 12,
    });
    em.create(SnapshotVerification, {
      customer: customer.id,
      snapshotId: bad.snapshotId,
      source: 'manual',
      status: 'failed',
      verifiedAt: at,
      problem: 'The database dump is incomplete.',
    });
    await em.flush();
    const r = await api.gql(SNAPSHOTS, {}, { token });
    const byId = new Map(
      ((r.data?.me.snapshots ?? []) as { id: string; verification: unknown }[]).map((s) => [
        s.id,
        s.verification,
      ]),
    );
    expect(byId.get(good.snapshotId)).toEqual({
      status: 'VERIFIED',
      verifiedAt: at.toISOString(),
      restoreSeconds: 41.5,
      files: 1200,
      bytes: 5_000_000_000,
      tables: 12,
      problem: null,
    });
    expect(byId.get(bad.snapshotId)).toMatchObject({
      status: 'FAILED',
      problem: 'The database dump is incomplete.',
    });
    expect(byId.get(never.snapshotId)).toBeNull();
    // another customer's verdict on the same restic id is not theirs
    const [other, otherToken] = await customerWithToken('node-v4');
    await buildSnapshot(db.orm.em, other, { snapshotId: good.snapshotId });
    const theirs = await api.gql(SNAPSHOTS, {}, { token: otherToken });
    expect(theirs.data?.me.snapshots[0].verification).toBeNull();
    expect(await db.orm.em.fork().count(BackupJob, { customer: other.id })).toBe(0);
  });
});
