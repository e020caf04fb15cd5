import type { MikroORM } from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import { recoverSite, type ScriptRunner } from '../executors/script-runner.js';
import type { Logger } from '../infra/logger.js';
import { customerMessage } from '../jobs/job-messages.js';
import { enqueueJob, laneOf, type QueuedJob, type QueueLane } from '../jobs/job-queue.js';
import type { JobStore } from '../jobs/job-store.js';
import { taskFor } from '../jobs/tasks/index.js';
import { recordRecoveredUndoPoints } from './undo-points.js';

export interface RecoveryDeps {
  orm: MikroORM;
  store: JobStore;
  node: string;
  /** The node's queue of each lane (jobs-<node>, daily-<node>). */
  queues: Record<QueueLane, BeeQueue<QueuedJob>>;
  scripts: ScriptRunner;
  logger: Logger;
}

/** The last phase of a restore that the recovery finished after the worker was stopped. */
export const FINISHED_AFTER_INTERRUPTION = 'FINISHED_AFTER_INTERRUPTION';

/**
 * Puts the node back in order after a crash. Runs while this worker holds the node's lease,
 * so every RUNNING job of the node was left by a dead worker: its site is recovered (entirely
 * old or entirely new, maintenance off, site started) before the job ends. A restore that had
 * switched the site over is finished by that recovery (its undo point stored): COMPLETED;
 * anything else FAILED, INTERRUPTED. Every PENDING job is enqueued again (Redis may have been
 * emptied); enqueueing is idempotent. Restore journals left by scripts killed after their job
 * had ended (housekeeping) are finished too, and their jobs settled.
 */
export async function recoverNode(
  deps: RecoveryDeps,
): Promise<{ interrupted: number; requeued: number }> {
  const { store } = deps;
  const onEvent = recordRecoveredUndoPoints(deps);
  const running = await store.onNode(deps.node, 'running');
  for (const job of running) {
    const ref = { id: job.id, customerId: job.customer.id };
    const log = deps.logger.child({ jobId: job.id, customerId: ref.customerId });
    log.warn({ kind: job.kind, phase: job.phase }, 'recovering an interrupted job');
    let action: string | null = null;
    const recovery = taskFor(job.kind).recovery;
    const result = recovery
      ? await deps.scripts.run(recovery.script, recovery.args(ref.customerId), {
          timeoutMs: 30 * 60_000,
        })
      : await recoverSite(deps.scripts, ref.customerId, async (event) => {
          if (event.type === 'recovered') action = event.action;
          await onEvent(event);
        });
    if (result.exitCode !== 0) {
      log.error({ exitCode: result.exitCode, stderr: result.stderrTail }, 'site recovery failed');
    }
    // The restore had switched the site over before it was killed, and the recovery finished
    // it (its undo point is on the row, by onEvent): the site is the backup; the job is done.
    if (job.kind === 'restore' && action === 'completed' && result.exitCode === 0) {
      await store.complete(ref, { phase: FINISHED_AFTER_INTERRUPTION });
      await store.settle(ref);
      log.warn('the restore was switched over before the interruption: completed');
      continue;
    }
    await store.fail(ref, {
      code: 'INTERRUPTED',
      message:
        result.exitCode === 0
          ? customerMessage('INTERRUPTED')
          : 'The job was interrupted and your site needs a check by our team.',
      detail: result.exitCode === 0 ? null : result.stderrTail,
    });
  }
  await finishLeftoverRestores(deps, onEvent);
  await removeLeftoverDrills(deps);
  // Jobs that ended while their script's housekeeping was cut short (the worker was killed
  // after COMPLETED): their scripts are gone and the journals finished.
  for (const job of await store.unsettledOnNode(deps.node)) {
    await store.settle({ id: job.id, customerId: job.customer.id });
  }
  const pending = await store.onNode(deps.node, 'pending');
  for (const job of pending) await enqueueJob(deps.queues[laneOf(job)], job.id);
  if (running.length || pending.length) {
    deps.logger.info({ interrupted: running.length, requeued: pending.length }, 'recovery done');
  }
  return { interrupted: running.length, requeued: pending.length };
}

/**
 * Sandboxes, scratch databases and import accounts of restore drills killed with their worker,
 * or run by hand and killed (customers whose drill still runs are left alone).
 */
export async function removeLeftoverDrills(
  deps: Pick<RecoveryDeps, 'scripts' | 'logger'>,
): Promise<void> {
  const result = await deps.scripts.run('customer-verify', ['--recover-all'], {
    timeoutMs: 30 * 60_000,
  });
  if (result.exitCode !== 0) {
    deps.logger.error(
      { exitCode: result.exitCode, stderr: result.stderrTail },
      'removing leftover drills failed',
    );
  }
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
  deps: Pick<RecoveryDeps, 'orm' | 'store' | 'scripts' | 'logger'>,
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
