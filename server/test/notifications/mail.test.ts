import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { BackupJob, type JobKind } from '../../src/jobs/job.entity.js';
import type { Announcement } from '../../src/jobs/job-store.js';
import type { SnapshotSource } from '../../src/snapshots/snapshot-scope.js';
import { startTestApi, type TestApi } from '../api/support/test-api.js';
import { adminToken, buildCustomer, buildJob, customerToken } from '../support/factories.js';
import { type SmtpServer, startSmtpServer } from '../support/smtp.js';
import { createWorkerWorld, type WorkerWorld } from '../worker/support/worker-env.js';

describe('e-mail notifications, sent by the worker through a real SMTP server', () => {
  let world: WorkerWorld;
  let smtp: SmtpServer;
  let api: TestApi;
  const node = 'node-mail';

  beforeAll(async () => {
    world = await createWorkerWorld();
    // The server refuses the first message (451): the worker has to try again.
    smtp = await startSmtpServer(world.scriptsEnv.dataDir, { rejectFirst: 1 });
    await world.startWorker(node, {
      BACKUPS_SMTP_URL: smtp.url,
      BACKUPS_MAIL_FROM: 'Backups <backups@hosting.example>',
      BACKUPS_MAIL_SWEEP_SECONDS: '0.2',
      BACKUPS_MAIL_RETRY_SECONDS: '0.2,0.2',
    });
    api = await startTestApi({ db: world.db, prefix: world.prefix });
  });
  afterAll(async () => {
    await api?.stop();
    await smtp?.stop();
    await world?.destroy();
  });

  /** A job that runs and ends through the job store, as the worker's runner ends it. */
  async function endJob(
    customer: ICustomer,
    kind: JobKind,
    source: SnapshotSource,
    outcome: 'completed' | 'failed',
    announcements: Announcement[] = [],
  ): Promise<number> {
    const job = await buildJob(world.db.orm.em, customer, { kind, status: 'pending' });
    await world.db.orm.em.fork().nativeUpdate(BackupJob, { id: job.id }, { source });
    await world.store.claim(job.id);
    const ref = { id: job.id, customerId: customer.id };
    if (outcome === 'completed') await world.store.complete(ref, {}, announcements);
    else {
      await world.store.fail(
        ref,
        {
          code: 'DISK_FULL',
          message: 'There is not enough free space for the restore.',
          detail: 'password=hunter2 in a log line',
        },
        announcements,
      );
    }
    return job.id;
  }

  const mailRows = async (customer: ICustomer) =>
    world.db.orm.em
      .getConnection()
      .execute<{ kind: string; status: string; attempts: number }[]>(
        'select kind, status, attempts from email_messages where customer_id = ? order by id',
        [customer.id],
      );

  it('a restore completes: the customer gets "Your site was restored", text and HTML, after one refusal', async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node, name: 'Ada <Shop>' });
    await endJob(customer, 'restore', 'manual', 'completed');
    const [mail] = await smtp.waitFor(1);
    expect(mail).toMatchObject({
      from: 'backups@hosting.example',
      to: [customer.email],
      subject: 'Your site was restored',
    });
    expect(mail?.text).toMatch(
      /^Hello Ada <Shop>,\n\nThe restore of the files and the database of your site finished at \d{4}-\d\d-\d\d \d\d:\d\d UTC\./,
    );
    expect(mail?.text).toContain('undo point');
    expect(mail?.html).toContain('<p>Hello Ada &#60;Shop&#62;,</p>');
    expect(await mailRows(customer)).toEqual([
      { kind: 'restore_completed', status: 'sent', attempts: 2 },
    ]);
  });

  it("a restore fails: the customer reads why, and never the operators' detail", async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node });
    const before = (await smtp.messages()).length;
    await endJob(customer, 'restore', 'manual', 'failed');
    const mail = (await smtp.waitFor(before + 1))[before];
    expect(mail?.subject).toBe('A restore of your site failed');
    expect(mail?.text).toContain('failed: There is not enough free space for the restore.');
    expect(mail?.text).toContain('left exactly as it was');
    expect(mail?.text).not.toContain('hunter2');
  });

  it('a daily backup failing twice in a row sends one e-mail, at the second failure', async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node });
    await endJob(customer, 'backup', 'daily', 'completed');
    await endJob(customer, 'backup', 'daily', 'failed');
    expect(await mailRows(customer)).toEqual([]);
    const before = (await smtp.messages()).length;
    await endJob(customer, 'backup', 'daily', 'failed');
    const mail = (await smtp.waitFor(before + 1))[before];
    expect(mail).toMatchObject({
      subject: 'Your daily backups failed twice in a row',
      to: [customer.email],
    });
    expect(mail?.text).toContain('failed again');
    // A manual backup failing is no such news.
    await endJob(customer, 'backup', 'manual', 'failed');
    expect((await mailRows(customer)).map((r) => r.kind)).toEqual(['daily_failed_twice']);
  });

  it('a backup failing its drill sends "A test restore ... failed"; a drill that could not judge, or one switched off, sends nothing', async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node });
    const failedDrill: Announcement[] = [{ event: 'verification.failed' }];
    // The storage was busy: FAILED without a verdict, no news for the customer.
    await endJob(customer, 'verify', 'daily', 'failed');
    const before = (await smtp.messages()).length;
    await endJob(customer, 'verify', 'daily', 'failed', failedDrill);
    const mail = (await smtp.waitFor(before + 1))[before];
    expect(mail).toMatchObject({
      to: [customer.email],
      subject: 'A test restore of one of your backups failed',
    });
    expect(mail?.text).toContain('Your site was not touched.');
    expect(mail?.text).toContain('failed at');
    expect(mail?.text).not.toContain('hunter2');
    const off = await api.gql(
      'mutation { updateNotificationSettings(drillFailed: false) { ... on NotificationSettings { drillFailed } } }',
      {},
      { token: await customerToken(world.db.orm.em, customer) },
    );
    expect(off.data?.updateNotificationSettings).toEqual({ drillFailed: false });
    await endJob(customer, 'verify', 'daily', 'failed', failedDrill);
    expect((await mailRows(customer)).map((r) => r.kind)).toEqual(['drill_failed']);
  });

  it('nothing is sent for what the customer switched off', async () => {
    const customer = await buildCustomer(world.db.orm.em, { host: node });
    const token = await customerToken(world.db.orm.em, customer);
    const off = await api.gql(
      'mutation { updateNotificationSettings(restoreCompleted: false) { ... on NotificationSettings { restoreCompleted restoreFailed } } }',
      {},
      { token },
    );
    expect(off.data?.updateNotificationSettings).toEqual({
      restoreCompleted: false,
      restoreFailed: true,
    });
    const read = await api.gql(
      'query { me { notificationSettings { restoreCompleted restoreFailed dailyBackupFailedTwice drillFailed } } }',
      {},
      { token },
    );
    expect(read.data?.me.notificationSettings).toEqual({
      restoreCompleted: false,
      restoreFailed: true,
      dailyBackupFailedTwice: true,
      drillFailed: true,
    });
    const before = (await smtp.messages()).length;
    await endJob(customer, 'restore', 'manual', 'completed');
    // The next e-mail (switched on) is the only one to arrive.
    await endJob(customer, 'restore', 'manual', 'failed');
    const after = await smtp.waitFor(before + 1);
    await new Promise((r) => setTimeout(r, 500));
    expect((await smtp.messages()).slice(before).map((m) => m.subject)).toEqual([
      'A restore of your site failed',
    ]);
    expect(after[before]?.to).toEqual([customer.email]);
    expect((await mailRows(customer)).map((r) => r.kind)).toEqual(['restore_failed']);
  });

  it("a customer cannot change another customer's switches; an admin token must name the customer", async () => {
    const [alice, bob] = [
      await buildCustomer(world.db.orm.em, { host: node }),
      await buildCustomer(world.db.orm.em, { host: node }),
    ];
    const update = `mutation($customerId: ID) {
      updateNotificationSettings(restoreFailed: false, customerId: $customerId) {
        __typename ... on Error { code } ... on NotificationSettings { restoreFailed }
      }
    }`;
    const bobToken = await customerToken(world.db.orm.em, bob);
    const forAlice = await api.gql(update, { customerId: String(alice.id) }, { token: bobToken });
    expect(forAlice.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const admin = await adminToken(world.db.orm.em);
    const unnamed = await api.gql(update, {}, { token: admin });
    expect(unnamed.data?.updateNotificationSettings).toEqual({
      __typename: 'InvalidInputError',
      code: 'INVALID_INPUT',
    });
    const rows = await world.db.orm.em
      .getConnection()
      .execute('select * from notification_settings where customer_id = ?', [alice.id]);
    expect(rows).toHaveLength(0);
    const named = await api.gql(update, { customerId: String(alice.id) }, { token: admin });
    expect(named.data?.updateNotificationSettings).toMatchObject({ restoreFailed: false });
  });
});
