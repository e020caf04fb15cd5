import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { config } from '../config/config.js';
import { createLogger } from '../infra/logger.js';
import { BackupJob } from '../jobs/job.entity.js';
import { enqueueDailyBackups } from '../worker/daily-schedule.js';
import { withServices } from './context.js';

export function dailyCommands(program: Command): void {
  program
    .command('daily:run')
    .description("enqueue today's daily backups for a node now, and follow them to the end")
    .option('--node <node>', 'the hosting node', undefined)
    .option('--no-wait', 'enqueue only')
    .action((opts: { node?: string; wait: boolean }) =>
      withServices(async ({ orm, redis, jobs }) => {
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
            store: jobs,
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
}
