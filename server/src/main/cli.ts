import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { text } from 'node:stream/consumers';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { recordAudit } from '../audit/audit.js';
import type { AuditAction } from '../audit/audit-event.entity.js';
import { ApiToken } from '../auth/api-token.entity.js';
import { createAdminToken } from '../auth/api-tokens.js';
import { config } from '../config/config.js';
import { createCustomer } from '../customers/customer-service.js';
import { seedDemo } from '../customers/demo.js';
import { openOrm } from '../db/orm.js';
import { createLogger } from '../infra/logger.js';
import { createRedis } from '../infra/redis.js';
import { insertPendingJob } from '../jobs/create-job.js';
import { BackupJob, JOB_STATUSES, type JobStatus } from '../jobs/job.entity.js';
import { publishJobChanged } from '../jobs/job-events.js';
import { enqueueJob, laneOf, QueueRegistry } from '../jobs/job-queue.js';
import { perCustomerSources, syncCatalog } from '../snapshots/catalog-sync.js';
import { enqueueDailyBackups } from '../worker/daily-schedule.js';
import { ScriptRunner } from '../worker/script-runner.js';

type Orm = Awaited<ReturnType<typeof openOrm>>;
const operator = () => `operator:${userInfo().username}`;
const program = new Command('backups').description('Customer backups: the operator command line');

async function withOrm<T>(fn: (orm: Orm) => Promise<T>): Promise<T> {
  const orm = await openOrm(config());
  try {
    return await fn(orm);
  } finally {
    await orm.close(true);
  }
}

/** Everything commands that touch queues and pub/sub need. */
async function withServices<T>(
  fn: (s: { orm: Orm; queues: QueueRegistry; redis: ReturnType<typeof createRedis> }) => Promise<T>,
): Promise<T> {
  const cfg = config();
  return withOrm(async (orm) => {
    const queues = new QueueRegistry({
      redisUrl: cfg.BACKUPS_REDIS_URL,
      prefix: cfg.BACKUPS_REDIS_PREFIX,
    });
    const redis = createRedis(cfg.BACKUPS_REDIS_URL, 'cli');
    try {
      return await fn({ orm, queues, redis });
    } finally {
      await queues.close();
      await redis.quit();
    }
  });
}

function audit(orm: Orm, action: AuditAction, customerId: number | null, targetId: string | null) {
  return recordAudit(orm.em, {
    action,
    actor: { kind: 'operator', id: operator().slice(0, 64) },
    customerId,
    targetId,
  });
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}

function scriptRunner(): ScriptRunner {
  const cfg = config();
  return new ScriptRunner({
    scriptsDir: cfg.BACKUPS_SCRIPTS_DIR,
    prefix: cfg.BACKUPS_SCRIPT_PREFIX,
    logger: createLogger('cli', 'warn'),
  });
}

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(() =>
    withOrm(async (orm) => {
      const applied = await orm.migrator.up();
      console.log(
        applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'up to date',
      );
    }),
  );

program
  .command('seed-demo')
  .description('create (or refresh) the demo customer with a real site folder and database')
  .action(() =>
    withOrm(async (orm) => {
      console.log(JSON.stringify(await seedDemo(orm.em, config())));
    }),
  );

program
  .command('customer:add')
  .description('add a customer')
  .requiredOption('--email <email>')
  .requiredOption('--name <name>')
  .requiredOption(
    '--password-file <file>',
    'a file holding the password, at least 10 characters ("-": read it from stdin); never on the command line, where every local user sees it (ps)',
  )
  .option('--host <host>', 'the hosting node serving the site')
  .option('--layout <layout>', 'wordpress or volumes/files', 'wordpress')
  .action(
    (opts: { email: string; name: string; passwordFile: string; host?: string; layout: string }) =>
      withOrm(async (orm) => {
        if (opts.layout !== 'wordpress' && opts.layout !== 'volumes/files') {
          throw new InvalidArgumentError('--layout must be wordpress or volumes/files');
        }
        const read =
          opts.passwordFile === '-' ? text(process.stdin) : readFile(opts.passwordFile, 'utf8');
        // One line: the end of line a file or `echo` adds is not part of the password.
        const password = (await read).replace(/\r?\n$/, '');
        const customer = await createCustomer(orm.em, {
          email: opts.email,
          name: opts.name,
          password,
          host: opts.host ?? config().BACKUPS_NODE,
          siteLayout: opts.layout,
        });
        await audit(orm, 'customer_created', customer.id, String(customer.id));
        console.log(
          JSON.stringify({ id: customer.id, email: customer.email, host: customer.host }),
        );
      }),
  );

program
  .command('token:create-admin')
  .description('create an admin API token (may act for any customer); it is shown once')
  .requiredOption('--name <name>')
  .action((opts: { name: string }) =>
    withOrm(async (orm) => {
      const { token, apiToken } = await createAdminToken(orm.em, opts.name);
      await audit(orm, 'token_created', null, String(apiToken.id));
      console.log(JSON.stringify({ id: apiToken.id, name: apiToken.name, token }));
    }),
  );

program
  .command('token:revoke')
  .description('revoke an API token (admin or customer)')
  .argument('<id>', 'token id', positiveInt)
  .action((id: number) =>
    withOrm(async (orm) => {
      const updated = await orm.em
        .fork()
        .nativeUpdate(ApiToken, { id, revokedAt: null }, { revokedAt: new Date() });
      if (!updated) throw new Error(`no live token ${id}`);
      await audit(orm, 'token_revoked', null, String(id));
      console.log(`revoked token ${id}`);
    }),
  );

program
  .command('jobs:list')
  .description('list jobs, newest first')
  .option('--status <status>', `one of ${JOB_STATUSES.join(', ')}`)
  .option('--customer <id>', 'only this customer', positiveInt)
  .option('--limit <n>', 'at most this many', positiveInt, 50)
  .action((opts: { status?: string; customer?: number; limit: number }) =>
    withOrm(async (orm) => {
      if (opts.status && !JOB_STATUSES.includes(opts.status as JobStatus)) {
        throw new InvalidArgumentError(`--status must be one of ${JOB_STATUSES.join(', ')}`);
      }
      const jobs = await orm.em.fork().find(
        BackupJob,
        {
          ...(opts.status ? { status: opts.status as JobStatus } : {}),
          ...(opts.customer ? { customer: opts.customer } : {}),
        },
        { orderBy: { id: 'desc' }, limit: opts.limit },
      );
      console.table(
        jobs.map((j) => ({
          id: j.id,
          customer: j.customer.id,
          kind: j.kind,
          scope: j.scope,
          source: j.source,
          status: j.status,
          phase: j.phase ?? '',
          progress: Number(j.progress).toFixed(2),
          created: j.createdAt.toISOString(),
          error: j.errorCode ?? '',
        })),
      );
    }),
  );

program
  .command('jobs:retry')
  .description('run a failed or cancelled job again, as a new job')
  .argument('<id>', 'job id', positiveInt)
  .action((id: number) =>
    withServices(async ({ orm, queues }) => {
      const old = await orm.em.fork().findOne(BackupJob, id, { populate: ['customer'] });
      if (!old) throw new Error(`no job ${id}`);
      if (old.status !== 'failed' && old.status !== 'cancelled') {
        throw new Error(`job ${id} is ${old.status}; only failed or cancelled jobs can be retried`);
      }
      const job = await insertPendingJob(orm.em, {
        customer: old.customer,
        kind: old.kind,
        scope: old.scope,
        source: old.source,
        snapshotId: old.snapshotId,
        label: old.label,
        requestedByKind: 'operator',
        requestedById: operator().slice(0, 64),
      });
      await enqueueJob(queues.for(old.customer.host, laneOf(job)), job.id);
      await audit(orm, 'job_retried', old.customer.id, String(job.id));
      console.log(JSON.stringify({ retried: id, job: job.id }));
    }),
  );

program
  .command('jobs:cancel')
  .description('cancel a pending job (a running one finishes or rolls back by itself)')
  .argument('<id>', 'job id', positiveInt)
  .action((id: number) =>
    withServices(async ({ orm, queues, redis }) => {
      const em = orm.em.fork();
      const job = await em.findOne(BackupJob, id, { populate: ['customer'] });
      if (!job) throw new Error(`no job ${id}`);
      const updated = await em.nativeUpdate(
        BackupJob,
        { id, status: 'pending' },
        { status: 'cancelled', finishedAt: new Date() },
      );
      if (!updated)
        throw new Error(`job ${id} is ${job.status}; only pending jobs can be cancelled`);
      await queues
        .for(job.customer.host)
        .removeJob(String(id))
        .catch(() => undefined);
      await publishJobChanged(redis, config().BACKUPS_REDIS_PREFIX, {
        id,
        customerId: job.customer.id,
      });
      await audit(orm, 'job_cancelled', job.customer.id, String(id));
      console.log(`cancelled job ${id}`);
    }),
  );

program
  .command('daily:run')
  .description("enqueue today's daily backups for a node now, and follow them to the end")
  .option('--node <node>', 'the hosting node', undefined)
  .option('--no-wait', 'enqueue only')
  .action((opts: { node?: string; wait: boolean }) =>
    withServices(async ({ orm, queues, redis }) => {
      const cfg = config();
      const node = opts.node ?? cfg.BACKUPS_NODE;
      const bar = new SingleBar({ format: 'enqueue  [{bar}] {value}/{total}', hideCursor: true });
      bar.start(1, 0);
      const run = await enqueueDailyBackups(
        {
          orm,
          redis,
          prefix: cfg.BACKUPS_REDIS_PREFIX,
          node,
          queue: queues.for(node, 'daily'),
          logger: createLogger('cli', 'warn'),
        },
        undefined,
        (done, total) => {
          bar.setTotal(total);
          bar.update(done);
        },
      );
      bar.stop();
      console.error(
        `${run.enqueued.length} enqueued, ${run.busy.length} customers busy, ${run.unqueued.length} not queued (queue unreachable; retry later)`,
      );
      if (!opts.wait || run.enqueued.length === 0) return;
      const follow = new SingleBar({
        format: 'backups  [{bar}] {value}/{total} done, {failed} failed',
        hideCursor: true,
      });
      follow.start(run.enqueued.length, 0, { failed: 0 });
      for (;;) {
        const rows = await orm.em
          .fork()
          .find(BackupJob, { id: { $in: run.enqueued } }, { fields: ['status'] });
        const finished = rows.filter((r) => r.status !== 'pending' && r.status !== 'running');
        follow.update(finished.length, {
          failed: finished.filter((r) => r.status !== 'completed').length,
        });
        if (finished.length === rows.length) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      follow.stop();
    }),
  );

program
  .command('catalog:resync')
  .description("bring this node's snapshot catalog in step with the repositories")
  .option('--node <node>', 'the hosting node')
  .action((opts: { node?: string }) =>
    withOrm(async (orm) => {
      const report = await syncCatalog({
        orm,
        scripts: scriptRunner(),
        logger: createLogger('cli', 'warn'),
        node: opts.node ?? config().BACKUPS_NODE,
        perCustomer: perCustomerSources(config()),
      });
      console.log(JSON.stringify(report));
    }),
  );

program
  .command('repos:check')
  .description('check the repositories (structure and index; reads no data)')
  .action(async () => {
    const scripts = scriptRunner();
    let failed = 0;
    for (const kind of ['manual', 'daily'] as const) {
      process.stderr.write(`checking the ${kind} repository… `);
      let ok = false;
      const result = await scripts.run('backup-repository', [kind, 'check'], {
        onLine: (line) => {
          const parsed = JSON.parse(line) as { type?: string; ok?: boolean };
          if (parsed.type === 'check') ok = parsed.ok === true;
        },
      });
      ok = ok && result.exitCode === 0;
      if (!ok) failed += 1;
      process.stderr.write(
        ok ? 'ok\n' : `FAILED ${result.lastError?.message ?? result.stderrTail.slice(-300)}\n`,
      );
    }
    process.exitCode = failed ? 1 : 0;
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
