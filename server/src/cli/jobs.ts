import { type Command, InvalidArgumentError } from 'commander';
import { BackupJob, JOB_STATUSES, type JobStatus } from '../jobs/job.entity.js';
import { JobNotFoundError } from '../jobs/job-store.js';
import { audit, operator, positiveInt, withOrm, withServices } from './context.js';

export function jobCommands(program: Command): void {
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
    .command('jobs:show')
    .description("one job in full, with the failing script's last log lines (errorDetail)")
    .argument('<id>', 'job id', positiveInt)
    .action((id: number) =>
      withOrm(async (orm) => {
        const job = await orm.em.fork().findOne(BackupJob, id);
        if (!job) throw new JobNotFoundError(id);
        const { errorDetail, ...rest } = job;
        console.log(JSON.stringify({ ...rest, customer: job.customer.id }, null, 2));
        if (errorDetail) console.log(`\nerror detail (operators only):\n${errorDetail}`);
      }),
    );

  program
    .command('jobs:retry')
    .description('run a failed or cancelled job again, as a new job')
    .argument('<id>', 'job id', positiveInt)
    .action((id: number) =>
      withServices(async ({ orm, jobs }) => {
        const { old, job } = await jobs.retry(id, {
          requestedByKind: 'operator',
          requestedById: operator(),
        });
        await audit(orm, 'job_retried', old.customer.id, String(job.id));
        console.log(JSON.stringify({ retried: id, job: job.id }));
      }),
    );

  program
    .command('jobs:cancel')
    .description('cancel a pending job (a running one finishes or rolls back by itself)')
    .argument('<id>', 'job id', positiveInt)
    .action((id: number) =>
      withServices(async ({ orm, jobs }) => {
        const { job, cancelled } = await jobs.cancel(id);
        if (!cancelled) {
          throw new Error(`job ${id} is ${job.status}; only pending jobs can be cancelled`);
        }
        await audit(orm, 'job_cancelled', job.customer.id, String(id));
        console.log(`cancelled job ${id}`);
      }),
    );
}
