import type { Command } from 'commander';
import { config } from '../config/config.js';
import { Customer } from '../customers/customer.entity.js';
import { createLogger } from '../infra/logger.js';
import { BackupJob } from '../jobs/job.entity.js';
import { enqueueDrills } from '../worker/weekly-drills.js';
import { operator, positiveInt, withServices } from './context.js';

export function verifyCommands(program: Command): void {
  program
    .command('verify:run')
    .description(
      "restore drills now of each customer's newest daily backup (a customer, or every customer of a node), followed to the end",
    )
    .option('--customer <id>', 'one customer', positiveInt)
    .option('--node <node>', 'every customer of a hosting node')
    .option('--no-wait', 'enqueue only')
    .action((opts: { customer?: number; node?: string; wait: boolean }) =>
      withServices(async ({ orm, jobs }) => {
        if ((opts.customer === undefined) === (opts.node === undefined)) {
          throw new Error('name either --customer N or --node NODE');
        }
        const em = orm.em.fork();
        const customers = await em.find(
          Customer,
          opts.customer === undefined
            ? { host: opts.node ?? config().BACKUPS_NODE }
            : { id: opts.customer },
          { orderBy: { id: 'asc' } },
        );
        if (customers.length === 0) throw new Error('no such customer');
        const run = await enqueueDrills(
          { em, store: jobs, logger: createLogger('cli', 'warn') },
          customers,
          { requestedByKind: 'operator', requestedById: operator() },
        );
        console.error(
          `${run.enqueued.length} drills enqueued, ${run.busy.length} customers with a drill under way, ${run.nothing.length} without a daily backup, ${run.unqueued.length} not queued`,
        );
        if (!opts.wait || run.enqueued.length === 0) {
          if (run.enqueued.length === 0 && run.busy.length === 0) process.exitCode = 1;
          return;
        }
        for (;;) {
          const rows = await orm.em.fork().find(BackupJob, { id: { $in: run.enqueued } });
          if (rows.every((r) => r.status !== 'pending' && r.status !== 'running')) {
            let failed = 0;
            for (const row of rows) {
              const ok = row.status === 'completed';
              if (!ok) failed += 1;
              console.log(
                `customer ${row.customer.id}  job ${row.id}  ${row.snapshotId?.slice(0, 8)}  ${ok ? 'VERIFIED' : `FAILED ${row.errorMessage ?? ''}`}`,
              );
            }
            process.exitCode = failed ? 1 : 0;
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }),
    );
}
