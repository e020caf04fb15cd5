import type { MikroORM } from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import type { Redis } from 'ioredis';
import type { Logger } from '../infra/logger.js';
import { BackupJob } from '../jobs/job.entity.js';
import { publishJobChanged } from '../jobs/job-events.js';
import { enqueueJob, laneOf, type QueuedJob, type QueueLane } from '../jobs/job-queue.js';
import { customerMessage } from './job-runner.js';
import { recoverSite, type ScriptRunner } from './script-runner.js';
import { recordRecoveredUndoPoints } from './undo-points.js';

/** The last phase of a restore that the recovery finished after the worker was stopped. */
export const FINISHED_AFTER_INTERRUPTION = 'FINISHED_AFTER_INTERRUPTION';

export interface RecoveryDeps {
  orm: MikroORM;
  redis: Redis;
  prefix: string;
  node: string;
  /** The node's queue of each lane (jobs-<node>, daily-<node>). */
  queues: Record<QueueLane, BeeQueue<QueuedJob>>;
  scripts: ScriptRunner;
  logger: Logger;
}

/**
 * Puts the node back in order after a crash. Runs while this worker holds the node's lease,
 * so every RUNNING job of the node was left by a dead worker: its site is recovered (entirely
 * old or entirely new, maintenance off, site started) before the job is marked FAILED. Every
 * PENDING job is enqueued again (Redis may have been emptied); enqueueing is idempotent. Restore
 * journals left by scripts killed after their job had ended (housekeeping) are finished too.
 */
export async function recoverNode(
  deps: RecoveryDeps,
): Promise<{ interrupted: number; requeued: number }> {
  const em = deps.orm.em.fork();
  const onEvent = recordRecoveredUndoPoints(deps);
  const running = await em.find(
    BackupJob,
    { status: 'running', customer: { host: deps.node } },
    { populate: ['customer'] },
  );
  for (const job of running) {
    const log = deps.logger.child({ jobId: job.id, customerId: job.customer.id });
    log.warn({ kind: job.kind, phase: job.phase }, 'recovering an interrupted job');
    let action: string | null = null;
    const result = await recoverSite(deps.scripts, job.customer.id, async (event) => {
      if (event.type === 'recovered') action = event.action;
      await onEvent(event);
    });
    if (result.exitCode !== 0) {
      log.error({ exitCode: result.exitCode, stderr: result.stderrTail }, 'site recovery failed');
    }
    // The restore had switched the site over before it was killed, and the recovery finished
    // it (its undo point stored and on the row, by onEvent): the customer's site is the
    // backup, so the job is done, not failed.
    const finished = job.kind === 'restore' && action === 'completed' && result.exitCode === 0;
    await em.fork().nativeUpdate(
      BackupJob,
      { id: job.id, status: 'running' },
      finished
        ? {
            status: 'completed',
            phase: FINISHED_AFTER_INTERRUPTION,
            progress: 1,
            etaSeconds: null,
            finishedAt: new Date(),
          }
        : {
            status: 'failed',
            phase: null,
            errorCode: 'INTERRUPTED',
            errorMessage:
              result.exitCode === 0
                ? customerMessage('INTERRUPTED')
                : 'The job was interrupted and your site needs a check by our team.',
            finishedAt: new Date(),
          },
    );
    if (finished) log.warn('the restore was switched over before the interruption: completed');
    await publishJobChanged(deps.redis, deps.prefix, { id: job.id, customerId: job.customer.id });
  }
  await finishLeftoverRestores(deps, onEvent);
  const pending = await em.find(
    BackupJob,
    { status: 'pending', customer: { host: deps.node } },
    { orderBy: { id: 'asc' } },
  );
  for (const job of pending) await enqueueJob(deps.queues[laneOf(job)], job.id);
  if (running.length || pending.length) {
    deps.logger.info({ interrupted: running.length, requeued: pending.length }, 'recovery done');
  }
  return { interrupted: running.length, requeued: pending.length };
}

/**
 * A restore whose job already ended (COMPLETED once its site was switched over) may have been
 * killed during its housekeeping, or found the safety repository unavailable for its undo
 * point: its journal (and the undo folder) is still there. Every journal on this node is
 * finished, each under its customer's lock (customers with a script at work are left alone).
 * Run at start and with every catalog sync, so an undo point waiting for its repository is
 * stored once the repository is back.
 */
export async function finishLeftoverRestores(
  deps: Pick<RecoveryDeps, 'orm' | 'redis' | 'prefix' | 'scripts' | 'logger'>,
  onEvent = recordRecoveredUndoPoints(deps),
): Promise<void> {
  const leftovers = await deps.scripts.run('customer-restore', ['--recover-all'], {
    timeoutMs: 30 * 60_000,
    onEvent,
  });
  if (leftovers.exitCode !== 0) {
    deps.logger.error(
      { exitCode: leftovers.exitCode, stderr: leftovers.stderrTail },
      'recovery of leftover restores failed',
    );
  }
}
