import type { Command } from 'commander';
import { config } from '../config/config.js';
import { knownNodes, type NodeStatus, nodeStatus } from '../ops/node-status.js';
import { withServices } from './context.js';

const percent = (fraction: number) => `${Math.round(fraction * 100)}%`;
const ago = (at: Date, now: Date) => {
  const minutes = Math.round((now.getTime() - at.getTime()) / 60_000);
  return minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`;
};
const ids = (list: readonly number[]) =>
  list.length > 5 ? `${list.slice(0, 5).join(', ')}, …` : list.join(', ');

/** What an operator reads of one node. */
export function describeNode(s: NodeStatus, now = new Date()): string {
  const q = (lane: 'jobs' | 'daily') =>
    `${lane} ${s.queues[lane].waiting} waiting, ${s.queues[lane].active} active, ${s.queues[lane].delayed} delayed`;
  const lines = [`node ${s.node}: worker ${s.workerAlive ? 'alive' : 'NOT RUNNING'}`];
  lines.push(`  queues: ${q('jobs')}; ${q('daily')}`);
  if (s.running.length === 0) lines.push('  running: none');
  for (const job of s.running) {
    const since = job.startedAt ? `, for ${ago(job.startedAt, now)}` : '';
    lines.push(
      `  running: job ${job.id} ${job.kind} of customer ${job.customerId} (${job.phase ?? 'starting'}, ${percent(job.progress)}${since})`,
    );
  }
  const oldest = Object.entries(s.oldestPendingAt)
    .filter((entry): entry is [string, Date] => entry[1] !== null)
    .map(([lane, at]) => `${lane} ${ago(at, now)}`);
  lines.push(`  pending: ${s.pending}${oldest.length ? ` (oldest: ${oldest.join(', ')})` : ''}`);
  const d = s.daily;
  const failed = d.failed.map((f) => `${f.customerId} ${f.code ?? 'cancelled'}`);
  lines.push(
    `  daily run since ${d.since.toISOString()}: ${d.done.length} done, ${d.failed.length} failed${failed.length ? ` (${failed.slice(0, 5).join(', ')})` : ''}, ${d.missing.length} missing${d.missing.length ? ` (customers ${ids(d.missing)})` : ''}, ${d.running.length} queued or running`,
  );
  lines.push(`  customers without a daily backup for 36 h: ${s.staleCustomers} of ${s.customers}`);
  const last = (run: NodeStatus['lastDrill']) =>
    run
      ? `job ${run.jobId} ${run.status}${run.errorCode ? ` ${run.errorCode}` : ''}${run.finishedAt ? `, ${ago(run.finishedAt, now)} ago` : ''}`
      : 'none yet';
  lines.push(`  last restore drill: ${last(s.lastDrill)}`);
  const check = s.lastRepositoryCheck;
  lines.push(
    `  last repository check: ${check ? `${check.repository} ${check.outcome}${check.subset ? ` (data ${check.subset})` : ''}, ${ago(check.at, now)} ago` : 'none yet'}`,
  );
  return lines.join('\n');
}

export function statusCommands(program: Command): void {
  program
    .command('status')
    .description(
      "per node: the worker alive or not, queue depths, running jobs, the night's daily run, the last drill and check",
    )
    .option('--node <node>', 'only this hosting node')
    .option('--json', 'one JSON document, for scripts')
    .action((opts: { node?: string; json?: boolean }) =>
      withServices(async ({ orm, redis, queues }) => {
        const cfg = config();
        const em = orm.em.fork();
        const nodes = opts.node ? [opts.node] : await knownNodes(em);
        const now = new Date();
        const statuses: NodeStatus[] = [];
        for (const node of nodes) {
          statuses.push(
            await nodeStatus(
              {
                em,
                now,
                dailyAt: cfg.BACKUPS_DAILY_AT,
                workerAlive: async (n) =>
                  (await redis.exists(`${cfg.BACKUPS_REDIS_PREFIX}:worker:${n}`)) === 1,
                queueCounts: async (n, lane) => {
                  const health = await queues.for(n, lane).checkHealth();
                  return {
                    waiting: health.waiting,
                    active: health.active,
                    delayed: health.delayed,
                  };
                },
              },
              node,
            ),
          );
        }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ at: now, nodes: statuses }, null, 2)}\n`);
        } else {
          process.stdout.write(
            `${statuses.length ? statuses.map((s) => describeNode(s, now)).join('\n\n') : 'no nodes: no customers yet'}\n`,
          );
        }
      }),
    );
}
