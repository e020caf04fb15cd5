// The critical restore issue, end to end as the attacker would do it: a customer with full
// control of their own database (their own database account, through phpMyAdmin or PHP) hides
// SQL aimed at another customer's database and at the application database behind "--" and a
// control byte in a procedure, then backs up and restores through the GraphQL API.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { setCustomerPassword } from '../../src/customers/customer-service.js';
import { dbManifest, sql } from '../executors/support/harness.js';
import { createWorkerWorld, type WorkerWorld } from '../worker/support/worker-env.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const PASSWORD = 'a long enough password';

describe("a customer's restore cannot reach another customer's or the application's database", () => {
  let world: WorkerWorld;
  let api: TestApi;
  let attacker: ICustomer;
  let victim: ICustomer;
  let cookie: string;
  const login = `attacker_${randomBytes(4).toString('hex')}`;
  const loginPassword = randomBytes(12).toString('hex');

  beforeAll(async () => {
    world = await createWorkerWorld();
    attacker = await world.customer('node-x');
    victim = await world.customer('node-x');
    await setCustomerPassword(world.db.orm.em, attacker.id, PASSWORD);
    await sql(`CREATE USER '${login}'@'localhost' IDENTIFIED BY '${loginPassword}';
      GRANT ALL PRIVILEGES ON \`customer\\_${attacker.id}\`.* TO '${login}'@'localhost';`);
    await world.startWorker('node-x');
    api = await startTestApi({ db: world.db, prefix: world.prefix });
    cookie = await api.signIn(attacker.email, PASSWORD);
  });
  afterAll(async () => {
    await sql(`DROP USER IF EXISTS '${login}'@'localhost'`);
    await api?.stop();
    await world?.destroy();
  });

  // What the attack was after: the tokens, customers and sessions (the jobs this test runs
  // write their own rows, by design).
  const appDump = async () =>
    (
      await execa('mysqldump', [
        '-uroot',
        '--skip-dump-date',
        '--skip-extended-insert',
        world.db.name,
        'api_tokens',
        'customers',
        'sessions',
      ])
    ).stdout;

  async function runJob(mutation: string): Promise<{ status: string; errorCode: string | null }> {
    const created = await api.gql(mutation, {}, { cookie });
    const result = Object.values(created.data ?? {})[0] as { job?: { id: string } };
    expect(result?.job?.id, JSON.stringify(created)).toBeTruthy();
    const until = Date.now() + 120_000;
    for (;;) {
      const r = await api.gql(
        'query($id: ID!) { job(id: $id) { status errorCode snapshot { id } } }',
        { id: result.job?.id },
        { cookie },
      );
      const job = r.data?.job;
      if (job && !['PENDING', 'RUNNING'].includes(job.status)) return job;
      if (Date.now() > until) throw new Error(`job ${result.job?.id} never ended`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('the hidden UPDATE and INSERT never run: both databases are byte-identical afterwards', async () => {
    const v = `customer_${victim.id}`;
    const payload =
      'DELIMITER //\n' +
      `CREATE PROCEDURE p() SELECT 1 --\x01;; UPDATE ${v}.options SET value = 'pwned';; ` +
      `INSERT INTO ${world.db.name}.api_tokens (name, token_hash, prefix, is_admin, created_at) ` +
      `VALUES ('forged', SHA2('forged', 256), 'bk_forged', 1, NOW());; DO 0\n` +
      '//\nDELIMITER ;\n';
    await execa('mariadb', ['-u', login, `-p${loginPassword}`, `customer_${attacker.id}`], {
      input: payload,
    });
    const beforeVictim = await dbManifest(victim.id);
    const beforeApp = await appDump();

    const backup = await runJob(
      'mutation { createBackup(scope: DATABASE) { ... on CreateBackupSuccess { job { id } } } }',
    );
    expect(backup.status).toBe('COMPLETED');
    const listed = await api.gql('{ me { snapshots(source: MANUAL) { id } } }', {}, { cookie });
    const snapshotId = listed.data?.me.snapshots[0].id as string;
    const restore = await runJob(
      `mutation { restoreSnapshot(snapshotId: "${snapshotId}", scope: DATABASE, confirmation: "RESTORE") {
        ... on RestoreSnapshotSuccess { job { id } } } }`,
    );

    // The client splits the procedure where the server would not: the restore is refused
    // as a whole (the import account may not touch another database), and nothing changed.
    expect(restore.status).toBe('FAILED');
    expect(restore.errorCode).toBe('DATABASE_IMPORT_FAILED');
    expect(await dbManifest(victim.id)).toEqual(beforeVictim);
    expect(await appDump()).toEqual(beforeApp);
    expect(
      await sql(`SELECT COUNT(*) FROM ${world.db.name}.api_tokens WHERE name = 'forged'`),
    ).toBe('0');
    expect(
      await sql(
        `SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'backups_restore_${attacker.id}'`,
      ),
    ).toBe('0');
  });
});
