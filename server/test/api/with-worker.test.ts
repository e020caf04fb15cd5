import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { setCustomerPassword } from '../../src/customers/customer-service.js';
import { sql } from '../executors/support/harness.js';
import { createWorkerWorld, type WorkerWorld } from '../worker/support/worker-env.js';
import { startTestApi, subscribe, type TestApi } from './support/test-api.js';

const PASSWORD = 'a long enough password';
const JOB_FIELDS =
  'id status phase progress bytesDone bytesTotal errorMessage snapshot { id } safetySnapshot { id shortId source }';

describe('the api and a real worker, end to end', () => {
  let world: WorkerWorld;
  let api: TestApi;
  let customer: ICustomer;
  let cookie: string;
  let snapshotId: string;

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer('node-e');
    await setCustomerPassword(world.db.orm.em, customer.id, PASSWORD);
    await world.startWorker('node-e');
    api = await startTestApi({ db: world.db, prefix: world.prefix });
    cookie = await api.signIn(customer.email, PASSWORD);
  });
  afterAll(async () => {
    await api?.stop();
    await world?.destroy();
  });

  it('a backup is watched on jobUpdated to COMPLETED and then listed in me.snapshots(MANUAL)', async () => {
    const created = await api.gql(
      `mutation { createBackup(scope: BOTH, label: "before the plugin update") {
        __typename ... on CreateBackupSuccess { job { id status } } ... on Error { code message } } }`,
      {},
      { cookie },
    );
    expect(created.data?.createBackup.__typename).toBe('CreateBackupSuccess');
    const jobId = created.data?.createBackup.job.id as string;

    const watch = subscribe(
      api.wsClient({ cookie }),
      `subscription($id: ID!) { jobUpdated(id: $id) { ${JOB_FIELDS} } }`,
      { id: jobId },
    );
    await watch.ended;
    const states = watch.results.map((r) => r.data?.jobUpdated);
    expect(states.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1, errorMessage: null });
    expect(states.some((s) => s?.status === 'RUNNING' && s?.phase === 'UPLOADING')).toBe(true);
    const progress = states.map((s) => Number(s?.progress));
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    snapshotId = states.at(-1)?.snapshot?.id as string;
    expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);

    const listed = await api.gql(
      '{ me { snapshots(source: MANUAL) { id shortId source scope label sizeBytes } } }',
      {},
      { cookie },
    );
    expect(listed.data?.me.snapshots).toEqual([
      expect.objectContaining({
        id: snapshotId,
        source: 'MANUAL',
        scope: 'BOTH',
        label: 'before the plugin update',
      }),
    ]);
  });

  it('a restore with "RESTORE" brings the site back and leaves an undo point', async () => {
    const site = path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`, 'wordpress');
    const original = await readFile(path.join(site, 'index.php'), 'utf8');
    await writeFile(path.join(site, 'index.php'), 'hacked');
    await sql(`DELETE FROM customer_${customer.id}.posts`);

    const wrong = await api.gql(
      `mutation($id: ID!) { restoreSnapshot(snapshotId: $id, scope: BOTH, confirmation: "restore") {
        __typename ... on Error { code } } }`,
      { id: snapshotId },
      { cookie },
    );
    expect(wrong.data?.restoreSnapshot).toEqual({
      __typename: 'ConfirmationMismatchError',
      code: 'CONFIRMATION_MISMATCH',
    });

    const live = subscribe(
      api.wsClient({ cookie }),
      `subscription { customerJobs { ${JOB_FIELDS} } }`,
    );
    const restored = await api.gql(
      `mutation($id: ID!) { restoreSnapshot(snapshotId: $id, scope: BOTH, confirmation: "RESTORE") {
        __typename ... on RestoreSnapshotSuccess { job { id } } ... on Error { code message } } }`,
      { id: snapshotId.slice(0, 8) },
      { cookie },
    );
    expect(restored.data?.restoreSnapshot.__typename).toBe('RestoreSnapshotSuccess');
    const jobId = restored.data?.restoreSnapshot.job.id;
    // As an integrator would: the job's own subscription, to its end.
    const watch = subscribe(
      api.wsClient({ cookie }),
      `subscription($id: ID!) { jobUpdated(id: $id) { ${JOB_FIELDS} } }`,
      { id: jobId },
    );
    const until = Date.now() + 90_000;
    while (
      !live.results.some(
        (r) => r.data?.customerJobs.id === jobId && r.data?.customerJobs.status === 'COMPLETED',
      )
    ) {
      if (Date.now() > until) throw new Error('the restore never completed on customerJobs');
      if (live.results.some((r) => r.data?.customerJobs.status === 'FAILED'))
        throw new Error(JSON.stringify(live.results.at(-1)));
      await new Promise((r) => setTimeout(r, 100));
    }
    // the undo point is stored just after the switch-over: the finished job gets it, live
    const withUndo = () =>
      live.results.find(
        (r) => r.data?.customerJobs.id === jobId && r.data?.customerJobs.safetySnapshot,
      );
    const undoUntil = Date.now() + 60_000;
    while (!withUndo() && Date.now() < undoUntil) await new Promise((r) => setTimeout(r, 100));
    expect(withUndo()?.data?.customerJobs).toMatchObject({
      status: 'COMPLETED',
      safetySnapshot: { source: 'SAFETY' },
    });
    live.stop();
    // The subscription's last event is the finished restore with its undo point.
    await watch.ended;
    expect(watch.results.at(-1)?.data?.jobUpdated).toMatchObject({
      status: 'COMPLETED',
      safetySnapshot: { source: 'SAFETY' },
    });
    const phases = live.results.map((r) => r.data?.customerJobs.phase).filter(Boolean);
    expect(phases).toEqual(expect.arrayContaining(['SAFETY_SNAPSHOT', 'SWAPPING']));

    expect(await readFile(path.join(site, 'index.php'), 'utf8')).toBe(original);
    expect(Number(await sql(`SELECT count(*) FROM customer_${customer.id}.posts`))).toBe(3);

    const after = await api.gql(
      `query($id: ID!) { job(id: $id) { status safetySnapshot { id source } }
         me { snapshots(source: SAFETY) { id source } } }`,
      { id: jobId },
      { cookie },
    );
    const undo = after.data?.job.safetySnapshot;
    expect(after.data?.job.status).toBe('COMPLETED');
    expect(undo).toMatchObject({ source: 'SAFETY' });
    expect(after.data?.me.snapshots).toEqual([{ id: undo.id, source: 'SAFETY' }]);
  });
});
