import { chmod, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createLogger } from '../../src/infra/logger.js';
import type { IBackupJob } from '../../src/jobs/job.entity.js';
import { BackupJob } from '../../src/jobs/job.entity.js';
import { SnapshotVerification } from '../../src/snapshots/verification.entity.js';
import { alertStream } from '../../src/worker/alerts.js';
import { DailySchedule } from '../../src/worker/daily-schedule.js';
import { newestSnapshot } from '../../src/worker/weekly-drills.js';
import { dbManifest, exists, filesManifest, sql } from '../executors/support/harness.js';
import { REDIS_URL } from '../support/sandbox.js';
import { type SmtpServer, startSmtpServer } from '../support/smtp.js';
import {
  hookFor,
  LOOPBACK_HOOKS,
  type Receiver,
  startReceiver,
} from '../webhooks/support/receiver.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const serverDir = path.resolve(import.meta.dirname, '../..');

describe('restore drills (VERIFY jobs) in the worker', () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  let tools: string;
  /** How long the drills' `restic restore --verify` sleeps before it starts (a file). */
  let slowFile: string;
  const node = 'node-v';
  /** The customer's webhook receiver and the SMTP server the worker sends e-mail through. */
  let receiver: Receiver;
  let smtp: SmtpServer;
  const announcing = () => ({
    ...LOOPBACK_HOOKS,
    BACKUPS_SMTP_URL: smtp.url,
    BACKUPS_MAIL_FROM: 'backups@hosting.example',
    BACKUPS_MAIL_SWEEP_SECONDS: '0.2',
  });
  /** What the receiver heard of one job: event names, in order. */
  const heard = (jobId: number) =>
    receiver.received
      .filter((r) => r.verified?.data.job.id === String(jobId))
      .map((r) => r.verified?.type);

  beforeAll(async () => {
    tools = await mkdtemp(path.join(tmpdir(), 'verify-tools-'));
    slowFile = path.join(tools, 'slow-verify');
    const wrapper = path.join(tools, 'restic');
    // Only the drills' restores (--verify) are held; a restore's own download is not.
    await writeFile(
      wrapper,
      `#!/bin/bash\nfor a in "$@"; do if [ "$a" = --verify ]; then s=$(cat ${slowFile} 2>/dev/null || echo 0); trap 'pkill -TERM -P $$; exit 143' TERM; sleep "$s" >/dev/null 2>&1 & wait $!; trap - TERM; break; fi; done\nexec restic "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    world = await createWorkerWorld({ BACKUPS_RESTIC_BIN: wrapper });
    customer = await world.customer(node);
    smtp = await startSmtpServer(world.scriptsEnv.dataDir);
    receiver = await startReceiver();
    await hookFor(world.db.orm.em, world.config(node, announcing()), customer, receiver, [
      'backup.verified',
      'verification.failed',
      'job.failed',
    ]);
  });
  afterAll(async () => {
    await receiver?.close();
    await smtp?.stop();
    await world?.destroy();
    await rm(tools, { recursive: true, force: true });
  });

  const site = () => path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);
  const sandbox = () =>
    path.join(world.scriptsEnv.customersRoot, '.verify', `customer-${customer.id}`);
  const scratch = () => sql(`SHOW DATABASES LIKE 'customer\\_${customer.id}\\_\\_verify'`);
  const live = async () => ({
    files: await filesManifest(path.join(site(), 'wordpress')),
    db: await dbManifest(customer.id),
  });
  const verification = (snapshotId: string) =>
    world.db.orm.em
      .fork()
      .findOne(
        SnapshotVerification,
        { customer: customer.id, snapshotId },
        { orderBy: { id: 'desc' } },
      );
  const drill = (snapshotId: string | null) =>
    world.enqueue({ customer, kind: 'verify', scope: 'both', source: 'manual', snapshotId });
  const waitForPhase = async (id: number, phase: string) => {
    const until = Date.now() + 60_000;
    for (;;) {
      const row = await world.job(id);
      if (row.phase === phase) return;
      if (row.status !== 'pending' && row.status !== 'running') {
        throw new Error(`job ${id} ended ${row.status} before ${phase}`);
      }
      if (Date.now() > until) throw new Error(`job ${id} never reached ${phase}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let backup: IBackupJob;
  /** The job's script has ended, its housekeeping (the sandbox's removal) included. */
  const settled = async (id: number) => {
    const until = Date.now() + 60_000;
    for (;;) {
      const row = await world.job(id);
      if (row.settledAt) return row;
      if (Date.now() > until) throw new Error(`job ${id} never settled`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('a good snapshot: VERIFIED with files, bytes, tables and a restore time; the live site byte-identical; backup.verified announced', async () => {
    await writeFile(slowFile, '0');
    const worker = await world.startWorker(node, announcing());
    backup = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'manual' });
    expect(backup.status).toBe('completed');
    await writeFile(path.join(site(), 'wordpress/index.php'), 'changed after the backup');
    const before = await live();
    const job = await world.runJob({
      customer,
      kind: 'verify',
      scope: 'both',
      source: 'manual',
      snapshotId: backup.snapshotId,
    });
    expect(job.status, job.errorMessage ?? '').toBe('completed');
    await settled(job.id);
    const v = await verification(String(backup.snapshotId));
    expect(v).toMatchObject({ status: 'verified', jobId: job.id, tables: 4, problem: null });
    expect(v?.files).toBeGreaterThan(0);
    expect(v?.bytes).toBeGreaterThan(0);
    expect(v?.restoreSeconds).toBeGreaterThan(0);
    expect(await live()).toEqual(before);
    expect(await exists(path.join(site(), '.maintenance'))).toBe(false);
    expect(await exists(sandbox())).toBe(false);
    expect(await scratch()).toBe('');
    await receiver.waitFor(1);
    expect(heard(job.id)).toEqual(['backup.verified']);
    const [event] = receiver.received;
    expect(event?.problem).toBeNull();
    expect(event?.verified?.data.verification).toEqual({
      snapshotId: backup.snapshotId,
      source: 'MANUAL',
      status: 'VERIFIED',
      verifiedAt: v?.verifiedAt.toISOString(),
      restoreSeconds: Number(v?.restoreSeconds),
      files: v?.files,
      bytes: Number(v?.bytes),
      tables: 4,
      problem: null,
    });
    expect(await smtp.messages()).toEqual([]);
    await worker.stop();
  });

  it('a dump cut short: the job FAILED "the database dump is incomplete", a FAILED verification, an alert, verification.failed and the e-mail', async () => {
    const dumpDir = path.join(world.scriptsEnv.dataDir, 'cut', `customer-${customer.id}`);
    await mkdir(dumpDir, { recursive: true });
    const dump = path.join(dumpDir, `customer_${customer.id}.sql`);
    await writeFile(dump, (await execa('mysqldump', ['-uroot', `customer_${customer.id}`])).stdout);
    await truncate(dump, 1200);
    const made = await execa(
      'restic',
      ['backup', '--json', '--tag', `customer-${customer.id},manual,db`, dumpDir],
      { env: world.resticEnv('manual') },
    );
    const cut = made.stdout
      .split('\n')
      .map((l) => JSON.parse(l) as { message_type: string; snapshot_id?: string })
      .find((l) => l.message_type === 'summary')?.snapshot_id as string;
    const redis = new Redis(REDIS_URL);
    const worker = await world.startWorker(node, announcing());
    const before = receiver.received.length;
    try {
      const job = await world.runJob({
        customer,
        kind: 'verify',
        scope: 'both',
        source: 'manual',
        snapshotId: cut,
      });
      expect(job.status).toBe('failed');
      expect(job.errorCode).toBe('VERIFICATION_FAILED');
      expect(job.errorMessage).toMatch(/^The database dump is incomplete/);
      expect(await verification(cut)).toMatchObject({
        status: 'failed',
        problem: expect.stringMatching(/^The database dump is incomplete/),
      });
      const alerts = await redis.xrange(alertStream(world.prefix), '-', '+');
      const alert = JSON.parse(alerts.at(-1)?.[1][3] ?? '{}') as Record<string, unknown>;
      expect(alert).toMatchObject({
        type: 'verification_failed',
        customerId: customer.id,
        snapshotId: cut,
        jobId: job.id,
        problem: expect.stringMatching(/incomplete/),
      });
      const metrics = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
      expect(metrics).toMatch(
        /^backups_verification_failed_total\{kind="drill",node="[^"]+"\} 1$/m,
      );
      // Both events, recorded in the transaction that failed the job.
      await receiver.waitFor(before + 2);
      expect(heard(job.id).sort()).toEqual(['job.failed', 'verification.failed']);
      const failed = receiver.received.find((r) => r.verified?.type === 'verification.failed');
      expect(failed?.problem).toBeNull();
      expect(failed?.verified?.data.verification).toMatchObject({
        snapshotId: cut,
        status: 'FAILED',
        problem: expect.stringMatching(/^The database dump is incomplete/),
      });
      const [mail] = await smtp.waitFor(1);
      expect(mail).toMatchObject({
        to: [customer.email],
        subject: 'A test restore of one of your backups failed',
      });
      expect(mail?.text).toMatch(/failed at .* UTC: The database dump is incomplete/);
    } finally {
      await redis.quit();
      await worker.stop();
    }
  });

  it("a customer's restore asked for during their drill starts within seconds; the drill runs again later", async () => {
    await writeFile(slowFile, '60');
    const worker = await world.startWorker(node, { BACKUPS_VERIFY_RETRY_SECONDS: '2' });
    const verify = await drill(backup.snapshotId ?? null);
    await waitForPhase(verify.id, 'DOWNLOADING');
    expect(await exists(sandbox())).toBe(true);
    const asked = Date.now();
    const restore = await world.enqueue({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId: backup.snapshotId,
    });
    const started = await world.waitForJob(restore.id, ['running', 'completed', 'failed']);
    // the drill's restic would sleep for a minute: the restore did not wait for it
    expect(Date.now() - asked).toBeLessThan(20_000);
    expect(started.status).not.toBe('failed');
    await writeFile(slowFile, '0');
    const restored = await world.waitForJob(restore.id, ['completed', 'failed']);
    expect(restored.status, restored.errorMessage ?? '').toBe('completed');
    const again = await world.waitForJob(verify.id, ['completed', 'failed', 'cancelled']);
    expect(again.status, again.errorMessage ?? '').toBe('completed');
    expect(again.startedAt?.getTime()).toBeGreaterThan(restored.startedAt?.getTime() ?? 0);
    await settled(verify.id);
    expect(await verification(String(backup.snapshotId))).toMatchObject({
      status: 'verified',
      jobId: verify.id,
    });
    expect(await exists(sandbox())).toBe(false);
    await worker.stop();
  });

  it("cli verify:run --customer N drills the customer's newest daily backup and prints its verdict", async () => {
    await writeFile(slowFile, '0');
    const worker = await world.startWorker(node);
    const daily = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'daily' });
    expect(daily.status).toBe('completed');
    const cli = (...args: string[]) =>
      execa('node', ['--import', 'tsx', 'src/main/cli.ts', ...args], {
        cwd: serverDir,
        env: {
          ...world.scriptsEnv.env,
          BACKUPS_DB_NAME: world.db.name,
          BACKUPS_REDIS_PREFIX: world.prefix,
          BACKUPS_NODE: node,
        },
        extendEnv: false,
        reject: false,
      });
    const run = await cli('verify:run', '--customer', String(customer.id));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/1 drills enqueued/);
    expect(run.stdout).toMatch(
      new RegExp(`customer ${customer.id} .* ${String(daily.snapshotId).slice(0, 8)}  VERIFIED`),
    );
    expect(await verification(String(daily.snapshotId))).toMatchObject({
      status: 'verified',
      source: 'daily',
    });
    const bad = await cli('verify:run', '--customer', 'x');
    expect(bad.exitCode).not.toBe(0);
    const both = await cli('verify:run', '--customer', String(customer.id), '--node', node);
    expect(both.exitCode).not.toBe(0);
    await worker.stop();
  });

  it('SIGKILL of the worker mid-drill: after the restart no sandbox or scratch database is left, the job FAILED "interrupted"', async () => {
    await writeFile(slowFile, '60');
    const cfg = world.config(node);
    const child = execa('node', ['--import', 'tsx', 'src/main/worker.ts'], {
      cwd: serverDir,
      env: {
        ...world.scriptsEnv.env,
        BACKUPS_DB_NAME: cfg.BACKUPS_DB_NAME,
        BACKUPS_REDIS_PREFIX: cfg.BACKUPS_REDIS_PREFIX,
        BACKUPS_NODE: node,
        BACKUPS_WORKER_PORT: '0',
        BACKUPS_DAILY_ENABLED: 'false',
        BACKUPS_HEARTBEAT_SECONDS: '1',
        BACKUPS_LOG_LEVEL: 'warn',
      },
      extendEnv: false,
      detached: true,
      reject: false,
      stdio: 'ignore',
    });
    const verify = await drill(backup.snapshotId ?? null);
    await waitForPhase(verify.id, 'DOWNLOADING');
    expect(await exists(sandbox())).toBe(true);
    // the whole process group: the worker, the script, restic
    process.kill(-(child.pid as number), 'SIGKILL');
    await child;
    expect(await exists(sandbox())).toBe(true);

    await writeFile(slowFile, '0');
    const worker = await world.startWorker(node);
    const failed = await world.job(verify.id);
    expect(failed.status).toBe('failed');
    expect(failed.errorCode).toBe('INTERRUPTED');
    expect(failed.errorMessage).toMatch(/interrupted/i);
    expect(await exists(sandbox())).toBe(false);
    expect(await scratch()).toBe('');
    await worker.stop();
  });

  it("the daily schedule queues, on the customer's day of the week, a drill of their newest daily backup", async () => {
    const em = world.db.orm.em.fork();
    const newest = await newestSnapshot(em, customer.id, 'daily');
    // one customer on the node: its day is the one where (days since 1970) % 7 == 0
    const day = 86_400_000;
    const theirs = new Date((Math.floor(Date.now() / day / 7) + 1) * 7 * day + 2 * 3600_000);
    const other = new Date(theirs.getTime() + day);
    const redis = new Redis(REDIS_URL);
    const deps = {
      orm: world.db.orm,
      redis,
      prefix: world.prefix,
      node,
      store: world.store,
      logger: createLogger('schedule-test', 'error'),
    };
    try {
      const drills = () =>
        em
          .fork()
          .find(BackupJob, { customer: customer.id, kind: 'verify', requestedByKind: 'schedule' });
      await new DailySchedule(deps, '02:00').runDaily(other);
      expect(await drills()).toEqual([]);
      await new DailySchedule(deps, '02:00').runDaily(theirs);
      expect(await drills()).toMatchObject([
        { status: 'pending', source: 'daily', snapshotId: newest?.snapshotId },
      ]);
    } finally {
      await redis.quit();
    }
  });
});
