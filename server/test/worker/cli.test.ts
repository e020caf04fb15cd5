import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEvent } from '../../src/audit/audit-event.entity.js';
import { ApiToken } from '../../src/auth/api-token.entity.js';
import { verifyPassword } from '../../src/auth/passwords.js';
import { Customer } from '../../src/customers/customer.entity.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const serverDir = path.resolve(import.meta.dirname, '../..');

describe('the ops command line', () => {
  let world: WorkerWorld;
  beforeAll(async () => {
    world = await createWorkerWorld();
  });
  afterAll(async () => {
    await world?.destroy();
  });

  const cli = (...args: string[]) => cliWithInput('', ...args);
  const cliWithInput = (input: string, ...args: string[]) =>
    execa('node', ['--import', 'tsx', 'src/main/cli.ts', ...args], {
      cwd: serverDir,
      input,
      env: {
        ...world.scriptsEnv.env,
        BACKUPS_DB_NAME: world.db.name,
        BACKUPS_REDIS_PREFIX: world.prefix,
        BACKUPS_NODE: 'node-cli',
      },
      extendEnv: false,
      reject: false,
    });

  it('adds a customer, and refuses a bad one with a clear message and no row', async () => {
    // The password comes on stdin (or from a file), never on the command line.
    const ok = await cliWithInput(
      'long enough password\n',
      'customer:add',
      '--email',
      'Shop@Example.test',
      '--name',
      'Shop',
      '--password-file',
      '-',
    );
    expect(ok.exitCode, ok.stderr).toBe(0);
    const added = JSON.parse(ok.stdout) as { id: number; host: string };
    expect(added.host).toBe('node-cli');
    const row = await world.db.orm.em.fork().findOneOrFail(Customer, added.id);
    expect(row.email).toBe('shop@example.test');
    // It signs in with exactly that password (the end of line is not part of it).
    expect(await verifyPassword(row.passwordHash, 'long enough password')).toBe(true);
    const onArgv = await cli(
      'customer:add',
      '--email',
      'argv@example.test',
      '--name',
      'Argv',
      '--password',
      'long enough password',
    );
    expect(onArgv.exitCode).not.toBe(0);
    expect(onArgv.stderr).toMatch(/--password-file/);
    expect(await world.db.orm.em.fork().count(Customer, { email: 'argv@example.test' })).toBe(0);

    const bad = await cliWithInput(
      'long enough password',
      'customer:add',
      '--email',
      'not-an-email',
      '--name',
      'X',
      '--password-file',
      '-',
    );
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/not an email address/);
    expect(await world.db.orm.em.fork().count(Customer, { name: 'X' })).toBe(0);

    // The hosting platform's own number: the site customer-<id> is theirs.
    const numbered = await cliWithInput(
      'long enough password',
      'customer:add',
      '--email',
      'numbered@example.test',
      '--name',
      'Numbered',
      '--id',
      '8123',
      '--password-file',
      '-',
    );
    expect(numbered.exitCode, numbered.stderr).toBe(0);
    expect(JSON.parse(numbered.stdout)).toMatchObject({ id: 8123 });
    expect((await world.db.orm.em.fork().findOneOrFail(Customer, 8123)).email).toBe(
      'numbered@example.test',
    );
    for (const id of ['0', '1.5', '12abc']) {
      const refused = await cliWithInput(
        'long enough password',
        'customer:add',
        '--email',
        `id-${id}@example.test`,
        '--name',
        'Bad id',
        '--id',
        id,
        '--password-file',
        '-',
      );
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr).toMatch(/--id must be a positive number/);
    }
    expect(await world.db.orm.em.fork().count(Customer, { name: 'Bad id' })).toBe(0);
  });

  it('creates an admin token shown once and stored only as a hash, and revokes it', async () => {
    const made = await cli('token:create-admin', '--name', 'billing system');
    expect(made.exitCode, made.stderr).toBe(0);
    const { id, token } = JSON.parse(made.stdout) as { id: number; token: string };
    const row = await world.db.orm.em.fork().findOneOrFail(ApiToken, id);
    expect(row.isAdmin).toBe(true);
    expect(row.tokenHash).not.toContain(token);
    expect(row.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect((await cli('token:revoke', String(id))).exitCode).toBe(0);
    expect((await world.db.orm.em.fork().findOneOrFail(ApiToken, id)).revokedAt).not.toBeNull();
  });

  it('cancels a pending job, refuses to cancel a finished one, and retries a failed one as a new job', async () => {
    const customer = await world.customer('node-cli');
    const pending = await world.enqueue({
      customer,
      kind: 'backup',
      scope: 'database',
      source: 'manual',
    });
    // An open page of the customer (or an integrator) hears of every change the CLI makes.
    const heard = await world.recordEvents(customer.id);
    const cancelled = await cli('jobs:cancel', String(pending.id));
    expect(cancelled.exitCode, cancelled.stderr).toBe(0);
    expect((await world.job(pending.id)).status).toBe('cancelled');
    const audited = await world.db.orm.em
      .fork()
      .findOneOrFail(AuditEvent, { action: 'job_cancelled', targetId: String(pending.id) });
    expect(audited).toMatchObject({ actorKind: 'operator', customerId: customer.id });
    const again = await cli('jobs:cancel', String(pending.id));
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/only pending jobs can be cancelled/);

    const retried = await cli('jobs:retry', String(pending.id));
    expect(retried.exitCode, retried.stderr).toBe(0);
    const { job } = JSON.parse(retried.stdout) as { job: number };
    const fresh = await world.db.orm.em.fork().findOneOrFail(BackupJob, job);
    expect(fresh).toMatchObject({
      status: 'pending',
      kind: 'backup',
      scope: 'database',
      requestedByKind: 'operator',
    });

    const listed = await cli('jobs:list', '--customer', String(customer.id));
    expect(listed.stdout).toContain('cancelled');
    expect(listed.stdout).toContain('pending');
    await new Promise((r) => setTimeout(r, 200));
    expect(heard.events.map((e) => e.id)).toEqual([pending.id, job]);
    await heard.stop();
  });

  it('a retry that cannot be queued leaves a FAILED row (QUEUE_UNAVAILABLE), published, and says so', async () => {
    const customer = await world.customer('node-cli');
    const old = await world.enqueue({ customer, kind: 'backup', scope: 'files', source: 'manual' });
    expect((await cli('jobs:cancel', String(old.id))).exitCode).toBe(0);
    // The node's queue is broken (its jobs hash is not a hash): Bee-Queue's add fails, while
    // Redis itself (pub/sub) answers.
    const redis = new Redis('redis://127.0.0.1:6379/0');
    const key = `${world.prefix}:jobs-node-cli:jobs`;
    await redis.del(key);
    await redis.set(key, 'not a hash');
    const heard = await world.recordEvents(customer.id);
    try {
      const retried = await cli('jobs:retry', String(old.id));
      expect(retried.exitCode).toBe(1);
      expect(retried.stderr).toMatch(/could not be queued/);
      const rows = await world.db.orm.em
        .fork()
        .find(BackupJob, { customer: customer.id }, { orderBy: { id: 'asc' } });
      expect(rows.map((r) => [r.status, r.errorCode])).toEqual([
        ['cancelled', null],
        ['failed', 'QUEUE_UNAVAILABLE'],
      ]);
      await new Promise((r) => setTimeout(r, 200));
      expect(heard.events.map((e) => e.id)).toEqual([rows[1]?.id]);
    } finally {
      await heard.stop();
      await redis.del(key);
      await redis.quit();
    }
  });

  it('runs the daily backups now: one per customer of the node, into the daily repository', async () => {
    const customers = [await world.customer('node-daily'), await world.customer('node-daily')];
    const elsewhere = await world.customer('node-other');
    const worker = await world.startWorker('node-daily');
    const run = await execa(
      'node',
      ['--import', 'tsx', 'src/main/cli.ts', 'daily:run', '--node', 'node-daily'],
      {
        cwd: serverDir,
        env: {
          ...world.scriptsEnv.env,
          BACKUPS_DB_NAME: world.db.name,
          BACKUPS_REDIS_PREFIX: world.prefix,
        },
        extendEnv: false,
        reject: false,
      },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/2 enqueued, 0 customers busy/);
    const em = world.db.orm.em.fork();
    const jobs = await em.find(BackupJob, { source: 'daily' }, { populate: ['customer'] });
    expect(jobs.map((j) => j.customer.id).sort()).toEqual(customers.map((c) => c.id).sort());
    expect(jobs.every((j) => j.status === 'completed' && j.requestedByKind === 'schedule')).toBe(
      true,
    );
    const rows = await em.find(Snapshot, { source: 'daily' });
    expect(rows.map((r) => r.customer.id).sort()).toEqual(customers.map((c) => c.id).sort());
    expect(rows.every((r) => r.tags.includes('daily') && r.scope === 'both')).toBe(true);
    expect(await em.count(Snapshot, { customer: elsewhere.id })).toBe(0);
    await worker.stop();
  });

  it('checks the repositories', async () => {
    const checked = await cli('repos:check');
    expect(checked.exitCode, checked.stderr).toBe(0);
    expect(checked.stderr).toMatch(/manual repository… ok/);
    expect(checked.stderr).toMatch(/daily repository… ok/);
  });
});
