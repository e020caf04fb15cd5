import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  auditRows,
  buildJob,
  buildSignInCustomer,
  buildSnapshot,
  customerToken,
  jobRows,
  PASSWORD,
} from './support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const CREATE_BACKUP = `mutation($scope: BackupScope!, $label: String) {
  createBackup(scope: $scope, label: $label) {
    __typename
    ... on CreateBackupSuccess { job { id kind scope source status label progress } }
    ... on JobInProgressError { job { id status } }
    ... on InvalidInputError { field }
    ... on RateLimitedError { retryAfterSeconds }
    ... on Error { code message }
  }
}`;
const RESTORE = `mutation($snapshotId: ID!, $scope: BackupScope!, $confirmation: String!) {
  restoreSnapshot(snapshotId: $snapshotId, scope: $scope, confirmation: $confirmation) {
    __typename
    ... on RestoreSnapshotSuccess { job { id kind scope source status snapshot { id source } } }
    ... on InvalidInputError { field }
    ... on Error { code message }
  }
}`;
const CANCEL = `mutation($id: ID!) {
  cancelJob(id: $id) {
    __typename
    ... on CancelJobSuccess { job { id status finishedAt } }
    ... on NotCancellableError { job { id status } }
    ... on Error { code message }
  }
}`;

describe('backup and restore requests', () => {
  let db: TestDatabase;
  let api: TestApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A high job-rate limit here, so the database's one-active-job rule is what is tested.
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

  async function finishActiveJobs(customer: ICustomer): Promise<void> {
    await db.orm.em
      .fork()
      .nativeUpdate(
        BackupJob,
        { customer: customer.id, status: { $in: ['pending', 'running'] } },
        { status: 'completed', finishedAt: new Date() },
      );
  }

  it('createBackup makes a PENDING job, queues it on the customer host and audits it', async () => {
    const customer = await buildSignInCustomer(db.orm.em, { host: 'node-b' });
    const cookie = await api.signIn(customer.email, PASSWORD);
    const result = await api.gql(
      CREATE_BACKUP,
      { scope: 'DATABASE', label: '  before the update  ' },
      { cookie },
    );
    const job = result.data?.createBackup.job;
    expect(result.data?.createBackup.__typename).toBe('CreateBackupSuccess');
    expect(job).toMatchObject({
      kind: 'BACKUP',
      scope: 'DATABASE',
      source: 'MANUAL',
      status: 'PENDING',
      label: 'before the update',
      progress: 0,
    });

    const rows = await jobRows(db.orm.em, customer);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: Number(job.id),
      status: 'pending',
      kind: 'backup',
      scope: 'database',
      source: 'manual',
      label: 'before the update',
      requestedByKind: 'customer',
      requestedById: String(customer.id),
    });
    expect(await api.queuedJobIds('node-b')).toEqual([job.id]);
    expect(await api.queuedJobIds('node-a')).not.toContain(job.id);
    expect((await auditRows(db.orm.em, 'backup_requested')).at(-1)).toMatchObject({
      actorKind: 'customer',
      customerId: customer.id,
      targetId: job.id,
      ip: '127.0.0.1',
    });

    const active = await api.gql('{ me { activeJob { id } jobs { id status } } }', {}, { cookie });
    expect(active.data?.me.activeJob.id).toBe(job.id);
    expect(active.data?.me.jobs).toEqual([{ id: job.id, status: 'PENDING' }]);
  });

  it('a second backup while one is active is JOB_IN_PROGRESS, with the active job', async () => {
    const [customer, token] = await customerWithToken();
    const first = await api.gql(CREATE_BACKUP, { scope: 'BOTH' }, { token });
    const second = await api.gql(CREATE_BACKUP, { scope: 'FILES' }, { token });
    expect(second.data?.createBackup).toMatchObject({
      __typename: 'JobInProgressError',
      code: 'JOB_IN_PROGRESS',
      job: { id: first.data?.createBackup.job.id, status: 'PENDING' },
    });
    expect(await jobRows(db.orm.em, customer)).toHaveLength(1);
  });

  it('50 concurrent createBackup mutations give exactly one job row and one queued job', async () => {
    const [customer, token] = await customerWithToken('node-c');
    const results = await Promise.all(
      Array.from({ length: 50 }, () => api.gql(CREATE_BACKUP, { scope: 'BOTH' }, { token })),
    );
    const kinds = results.map((r) => r.data?.createBackup.__typename);
    expect(kinds.filter((k) => k === 'CreateBackupSuccess')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'JobInProgressError')).toHaveLength(49);
    const rows = await jobRows(db.orm.em, customer);
    expect(rows).toHaveLength(1);
    expect(await api.queuedJobIds('node-c')).toEqual([String(rows[0]?.id)]);
  });

  it('a label that is too long or holds control characters is INVALID_INPUT and makes no job', async () => {
    const [customer, token] = await customerWithToken();
    for (const label of ['x'.repeat(10_000), 'x'.repeat(201), 'line\nbreak', 'bell\u0007']) {
      const result = await api.gql(CREATE_BACKUP, { scope: 'BOTH', label }, { token });
      expect(result.data?.createBackup).toMatchObject({ code: 'INVALID_INPUT', field: 'label' });
    }
    expect(await jobRows(db.orm.em, customer)).toEqual([]);
    const ok = await api.gql(
      CREATE_BACKUP,
      { scope: 'BOTH', label: 'Ünïcode ✓ 200'.padEnd(200, '.') },
      { token },
    );
    expect(ok.data?.createBackup.__typename).toBe('CreateBackupSuccess');
  });

  it('restore needs the exact confirmation RESTORE', async () => {
    const [customer, token] = await customerWithToken();
    const snapshot = await buildSnapshot(db.orm.em, customer);
    for (const confirmation of ['restore', 'RESTORE ', '', 'yes']) {
      const result = await api.gql(
        RESTORE,
        { snapshotId: snapshot.snapshotId, scope: 'BOTH', confirmation },
        { token },
      );
      expect(result.data?.restoreSnapshot.code).toBe('CONFIRMATION_MISMATCH');
    }
    expect(await jobRows(db.orm.em, customer)).toEqual([]);
  });

  it('a snapshot id that is not 8..64 lowercase hex is INVALID_INPUT: nothing is looked up or run', async () => {
    const [customer, token] = await customerWithToken('node-d');
    await buildSnapshot(db.orm.em, customer);
    for (const snapshotId of [
      '1;id',
      '$(id)',
      '../2',
      'abc',
      'ABCDEF12',
      `${'a'.repeat(64)}0`,
      'deadbeef ',
    ]) {
      const result = await api.gql(
        RESTORE,
        { snapshotId, scope: 'BOTH', confirmation: 'RESTORE' },
        { token },
      );
      expect(result.data?.restoreSnapshot).toMatchObject({
        code: 'INVALID_INPUT',
        field: 'snapshotId',
      });
    }
    expect(await jobRows(db.orm.em, customer)).toEqual([]);
    expect(await api.queuedJobIds('node-d')).toEqual([]);
  });

  it("another customer's snapshot is NOT_FOUND, exactly like one that does not exist", async () => {
    const [owner] = await customerWithToken();
    const [customer, token] = await customerWithToken();
    const theirs = await buildSnapshot(db.orm.em, owner);
    const byId = await api.gql(
      RESTORE,
      { snapshotId: theirs.snapshotId, scope: 'BOTH', confirmation: 'RESTORE' },
      { token },
    );
    const byPrefix = await api.gql(
      RESTORE,
      { snapshotId: theirs.shortId, scope: 'BOTH', confirmation: 'RESTORE' },
      { token },
    );
    const missing = await api.gql(
      RESTORE,
      { snapshotId: 'a'.repeat(64), scope: 'BOTH', confirmation: 'RESTORE' },
      { token },
    );
    expect(byId.data?.restoreSnapshot).toEqual(missing.data?.restoreSnapshot);
    expect(byPrefix.data?.restoreSnapshot).toEqual(missing.data?.restoreSnapshot);
    expect(missing.data?.restoreSnapshot.code).toBe('NOT_FOUND');
    expect(await jobRows(db.orm.em, customer)).toEqual([]);
    expect(await jobRows(db.orm.em, owner)).toEqual([]);
  });

  it('restore by unique prefix makes a PENDING restore of the full snapshot id with its source; an ambiguous prefix is NOT_FOUND', async () => {
    const [customer, token] = await customerWithToken('node-e');
    const daily = await buildSnapshot(db.orm.em, customer, {
      snapshotId: `abcdef01${'1'.repeat(56)}`,
      source: 'daily',
      scope: 'both',
    });
    await buildSnapshot(db.orm.em, customer, { snapshotId: `abcdef01${'2'.repeat(56)}` });

    const ambiguous = await api.gql(
      RESTORE,
      { snapshotId: 'abcdef0', scope: 'BOTH', confirmation: 'RESTORE' },
      { token },
    );
    expect(ambiguous.data?.restoreSnapshot.code).toBe('INVALID_INPUT'); // 7 characters
    const twoMatches = await api.gql(
      RESTORE,
      { snapshotId: 'abcdef01', scope: 'BOTH', confirmation: 'RESTORE' },
      { token },
    );
    expect(twoMatches.data?.restoreSnapshot.code).toBe('NOT_FOUND');

    const result = await api.gql(
      RESTORE,
      { snapshotId: 'abcdef011', scope: 'FILES', confirmation: 'RESTORE' },
      { token },
    );
    expect(result.data?.restoreSnapshot).toMatchObject({
      __typename: 'RestoreSnapshotSuccess',
      job: {
        kind: 'RESTORE',
        scope: 'FILES',
        source: 'DAILY',
        status: 'PENDING',
        snapshot: { id: daily.snapshotId, source: 'DAILY' },
      },
    });
    const rows = await jobRows(db.orm.em, customer);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      kind: 'restore',
      source: 'daily',
      snapshotId: daily.snapshotId,
    });
    expect(await api.queuedJobIds('node-e')).toEqual([String(rows[0]?.id)]);
    expect((await auditRows(db.orm.em, 'restore_requested')).at(-1)).toMatchObject({
      actorKind: 'token',
      customerId: customer.id,
      targetId: String(rows[0]?.id),
    });
  });

  it('a restore scope the snapshot does not hold is INVALID_INPUT', async () => {
    const [customer, token] = await customerWithToken();
    const dbOnly = await buildSnapshot(db.orm.em, customer, { scope: 'database' });
    for (const scope of ['FILES', 'BOTH']) {
      const result = await api.gql(
        RESTORE,
        { snapshotId: dbOnly.snapshotId, scope, confirmation: 'RESTORE' },
        { token },
      );
      expect(result.data?.restoreSnapshot).toMatchObject({ code: 'INVALID_INPUT', field: 'scope' });
    }
    expect(await jobRows(db.orm.em, customer)).toEqual([]);
  });

  it('cancelJob cancels a PENDING job, takes it off the queue and audits it; a finished job is NOT_CANCELLABLE', async () => {
    const [customer, token] = await customerWithToken('node-f');
    const created = await api.gql(CREATE_BACKUP, { scope: 'BOTH' }, { token });
    const id = created.data?.createBackup.job.id;
    expect(await api.queuedJobIds('node-f')).toEqual([id]);

    const cancelled = await api.gql(CANCEL, { id }, { token });
    expect(cancelled.data?.cancelJob).toMatchObject({
      __typename: 'CancelJobSuccess',
      job: { id, status: 'CANCELLED' },
    });
    expect(cancelled.data?.cancelJob.job.finishedAt).toBeTruthy();
    const [row] = await jobRows(db.orm.em, customer);
    expect(row?.status).toBe('cancelled');
    expect(await api.queuedJobIds('node-f')).toEqual([]);
    expect((await auditRows(db.orm.em, 'job_cancelled')).at(-1)?.targetId).toBe(id);

    const again = await api.gql(CANCEL, { id }, { token });
    expect(again.data?.cancelJob).toMatchObject({
      code: 'NOT_CANCELLABLE',
      job: { id, status: 'CANCELLED' },
    });
    const done = await buildJob(db.orm.em, customer, { status: 'completed' });
    const finished = await api.gql(CANCEL, { id: String(done.id) }, { token });
    expect(finished.data?.cancelJob.code).toBe('NOT_CANCELLABLE');
  });

  it("a failed job's errorDetail (the script's log) is for admin tokens only", async () => {
    const [customer, token] = await customerWithToken();
    const failed = await buildJob(db.orm.em, customer, {
      status: 'failed',
      errorDetail: 'mysqldump: Got error: 1044: Access denied',
    });
    const query = 'query($id: ID!) { job(id: $id) { id status errorDetail } }';
    const own = await api.gql(query, { id: String(failed.id) }, { token });
    expect(own.data?.job).toEqual({ id: String(failed.id), status: 'FAILED', errorDetail: null });
    const admin = await api.gql(
      query,
      { id: String(failed.id) },
      { token: await adminToken(db.orm.em) },
    );
    expect(admin.data?.job.errorDetail).toBe('mysqldump: Got error: 1044: Access denied');
  });

  it("another customer's job is NOT_FOUND to cancel and null to read", async () => {
    const [owner] = await customerWithToken();
    const [, token] = await customerWithToken();
    const theirs = await buildJob(db.orm.em, owner, { status: 'pending' });
    const cancel = await api.gql(CANCEL, { id: String(theirs.id) }, { token });
    const missing = await api.gql(CANCEL, { id: '4000000000' }, { token });
    expect(cancel.data?.cancelJob).toEqual(missing.data?.cancelJob);
    expect(cancel.data?.cancelJob.code).toBe('NOT_FOUND');
    const read = await api.gql(
      'query($id: ID!) { job(id: $id) { id } }',
      { id: String(theirs.id) },
      { token },
    );
    expect(read.data).toEqual({ job: null });
    const [row] = await jobRows(db.orm.em, owner);
    expect(row?.status).toBe('pending');
  });

  it('job creation is rate limited per customer (RATE_LIMITED)', async () => {
    const limited = await startTestApi({ db, config: { BACKUPS_JOB_LIMIT_PER_CUSTOMER: 3 } });
    try {
      const [customer, token] = await customerWithToken();
      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const result = await limited.gql(CREATE_BACKUP, { scope: 'BOTH' }, { token });
        outcomes.push(result.data?.createBackup.__typename);
        await finishActiveJobs(customer);
      }
      expect(outcomes).toEqual([
        'CreateBackupSuccess',
        'CreateBackupSuccess',
        'CreateBackupSuccess',
        'RateLimitedError',
      ]);
      expect(await jobRows(db.orm.em, customer)).toHaveLength(3);
    } finally {
      await limited.stop();
    }
  });

  it('a query 50 levels deep, too many aliases and a 2 MB body are refused; no job is made', async () => {
    const [customer, token] = await customerWithToken('node-g');
    const nest = (inner: string, type: string) =>
      `${`... on ${type} { `.repeat(50)}${inner}${' }'.repeat(50)}`;

    const deep = await api.gql(`query { ${nest('me { id }', 'Query')} }`, {}, { token });
    expect(deep.data ?? null).toBeNull();
    expect(deep.errors?.[0]?.message).toMatch(/depth|cost/i);
    const deepMutation = await api.gql(
      `mutation { ${nest('createBackup(scope: BOTH) { __typename }', 'Mutation')} }`,
      {},
      { token },
    );
    expect(deepMutation.data ?? null).toBeNull();
    expect(deepMutation.errors?.[0]?.message).toMatch(/depth|cost/i);

    const aliases = Array.from(
      { length: 50 },
      (_, i) => `a${i}: createBackup(scope: BOTH) { __typename }`,
    ).join(' ');
    const aliased = await api.gql(`mutation { ${aliases} }`, {}, { token });
    expect(aliased.data ?? null).toBeNull();
    expect(aliased.errors?.[0]?.message).toMatch(/alias/i);

    const big = await fetch(api.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query:
          'mutation($label: String) { createBackup(scope: BOTH, label: $label) { __typename } }',
        variables: { label: 'x'.repeat(2_000_000) },
      }),
    });
    expect(big.status).toBe(413);

    expect(await jobRows(db.orm.em, customer)).toEqual([]);
    expect(await api.queuedJobIds('node-g')).toEqual([]);
  });

  it('errors reveal no internals and field suggestions are off', async () => {
    const [, token] = await customerWithToken();
    const typo = await api.gql('{ me { emial } }', {}, { token });
    expect(typo.errors?.[0]?.message).not.toMatch(/did you mean/i);
    const badId = await api.gql('query { job(id: "1 or 1=1") { id } }', {}, { token });
    expect(badId.errors).toBeUndefined();
    expect(badId.data).toEqual({ job: null });
  });
});
