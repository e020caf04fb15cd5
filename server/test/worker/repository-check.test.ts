import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEvent } from '../../src/audit/audit-event.entity.js';
import { ScriptRunner } from '../../src/executors/script-runner.js';
import { createLogger } from '../../src/infra/logger.js';
import { nodeStatus } from '../../src/ops/node-status.js';
import { Alerts, alertStream } from '../../src/worker/alerts.js';
import { JobMetrics } from '../../src/worker/metrics.js';
import { checkRepositoryData, type RepositoryCheck } from '../../src/worker/repository-check.js';
import { REDIS_URL, SCRIPTS_DIR } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

const serverDir = path.resolve(import.meta.dirname, '../..');

describe('the rotating repository check', () => {
  let world: WorkerWorld;
  let redis: Redis;
  let scripts: ScriptRunner;
  const node = 'node-c';

  beforeAll(async () => {
    world = await createWorkerWorld();
    redis = new Redis(REDIS_URL);
    scripts = new ScriptRunner({
      scriptsDir: SCRIPTS_DIR,
      prefix: '',
      env: world.scriptsEnv.env,
      logger: createLogger('check-test', 'silent'),
    });
    // a few backups, so the daily repository has packs to share out
    const worker = await world.startWorker(node);
    for (let i = 0; i < 3; i++) {
      const customer = await world.customer(node);
      const job = await world.runJob({ customer, kind: 'backup', scope: 'both', source: 'daily' });
      expect(job.status).toBe('completed');
    }
    await worker.stop();
  });
  afterAll(async () => {
    await redis?.quit();
    await world?.destroy();
  });

  const deps = (alerts?: Alerts) => ({
    redis,
    prefix: world.prefix,
    scripts,
    logger: createLogger('check-test', 'silent'),
    em: world.db.orm.em.fork(),
    actor: { kind: 'operator' as const, id: `worker:${node}` },
    alerts,
  });

  it('N=4 reads four disjoint quarters: every data pack exactly once, each run audited', async () => {
    const checks: RepositoryCheck[] = [];
    for (const k of [1, 2, 3, 4]) {
      checks.push(await checkRepositoryData(deps(), 'daily', `${k}/4`));
    }
    expect(checks.map((c) => [c.outcome, c.subset])).toEqual([
      ['ok', '1/4'],
      ['ok', '2/4'],
      ['ok', '3/4'],
      ['ok', '4/4'],
    ]);
    const total = checks[0]?.totalPacks ?? 0;
    expect(total).toBeGreaterThan(3);
    expect(checks.every((c) => c.totalPacks === total)).toBe(true);
    // restic says how many packs each group holds: the four together are all of them
    expect(checks.reduce((n, c) => n + (c.packs ?? 0), 0)).toBe(total);
    const audits = await world.db.orm.em
      .fork()
      .find(AuditEvent, { action: 'repository_checked' }, { orderBy: { id: 'asc' } });
    expect(audits.map((a) => (a.details as { subset: string }).subset)).toEqual([
      '1/4',
      '2/4',
      '3/4',
      '4/4',
    ]);
    // the ops CLI's status shows the node's last check
    const status = await nodeStatus(
      {
        em: world.db.orm.em.fork(),
        workerAlive: async () => false,
        queueCounts: async () => ({ waiting: 0, active: 0, delayed: 0 }),
        dailyAt: '02:00',
      },
      node,
    );
    expect(status.lastRepositoryCheck).toMatchObject({
      repository: 'daily',
      outcome: 'ok',
      subset: '4/4',
    });
  });

  it('waits its turn: a repository whose lease another maintenance holds is not checked', async () => {
    await redis.set(`${world.prefix}:repository:daily`, 'someone else', 'PX', 10_000);
    try {
      expect((await checkRepositoryData(deps(), 'daily', '1/4')).outcome).toBe('busy');
    } finally {
      await redis.del(`${world.prefix}:repository:daily`);
    }
  });

  it('cli repos:check --read-data reads the chosen group of both repositories', async () => {
    const run = await execa(
      'node',
      ['--import', 'tsx', 'src/main/cli.ts', 'repos:check', '--read-data', '--subset', '2/2'],
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
    expect(run.stderr).toMatch(
      /group 2\/2 of the daily repository's data… ok \(\d+ of \d+ packs\)/,
    );
    expect(run.stdout.split('\n').map((l) => JSON.parse(l).repository)).toEqual([
      'manual',
      'daily',
    ]);
  });

  it('a damaged pack: FAILED in plain words, an alert, the metric', async () => {
    const data = path.join(world.scriptsEnv.dataDir, 'repos', 'daily', 'data');
    for (const sub of await readdir(data)) {
      for (const f of await readdir(path.join(data, sub))) {
        const pack = path.join(data, sub, f);
        await chmod(pack, 0o600);
        const bytes = await readFile(pack);
        for (let i = 40; i < Math.min(bytes.length, 120); i++) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
        await writeFile(pack, bytes);
      }
    }
    const metrics = new JobMetrics('n1');
    const alerts = new Alerts({
      redis,
      prefix: world.prefix,
      logger: createLogger('check-test', 'silent'),
      metrics,
    });
    const check = await checkRepositoryData(deps(alerts), 'daily', '1/1');
    expect(check.outcome).toBe('failed');
    expect(check.problem).toMatch(/^The backup storage check found damaged or missing data/);
    const entries = await redis.xrange(alertStream(world.prefix), '-', '+');
    expect(JSON.parse(entries.at(-1)?.[1][3] ?? '{}')).toMatchObject({
      type: 'repository_check_failed',
      repository: 'daily',
    });
    expect(await metrics.registry.metrics()).toMatch(
      /^backups_verification_failed_total\{kind="check",node="n1"\} 1$/m,
    );
  });
});
