import type { MikroORM } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import type { Logger } from '../infra/logger.js';
import {
  BackupJob,
  type IBackupJob,
  type JobScope,
  type JobStatus,
  type SnapshotSource,
} from '../jobs/job.entity.js';
import { publishJobChanged } from '../jobs/job-events.js';
import { forgetSnapshots, recordSnapshot } from '../snapshots/catalog.js';
import { readTags } from '../snapshots/snapshot-tags.js';
import type { JobMetrics } from './metrics.js';
import { overallProgress } from './progress.js';
import type { ScriptEvent } from './script-events.js';
import { recoverSite, SCRIPT_EXIT, type ScriptResult, type ScriptRunner } from './script-runner.js';
import { recordRecoveredUndoPoints } from './undo-points.js';

export interface JobRunnerDeps {
  orm: MikroORM;
  redis: Redis;
  prefix: string;
  scripts: ScriptRunner;
  logger: Logger;
  backupTimeoutMs: number;
  restoreTimeoutMs: number;
  heartbeatMs: number;
  metrics?: JobMetrics;
  /** Called when a job's retention had to wait for a busy repository. */
  onRetentionDeferred?: (customerId: number, source: SnapshotSource) => void;
}

const SCOPE_ARG: Record<JobScope, string> = { database: 'db', files: 'files', both: 'both' };

/** Customer-readable words for the scripts' error codes, when the script gave none. */
const MESSAGES: Record<string, string> = {
  SNAPSHOT_NOT_FOUND: 'That backup no longer exists.',
  SNAPSHOT_NOT_OWNED: 'That backup does not belong to this site.',
  INSUFFICIENT_SPACE:
    'There is not enough free disk space to restore this backup. Nothing was changed.',
  REPOSITORY_LOCKED: 'The backup storage is busy. Please try again in a few minutes.',
  REPOSITORY_UNAVAILABLE:
    'The backup storage could not be reached. Nothing was changed; our team has been told.',
  DATABASE_DUMP_FAILED: 'Your database could not be saved. Nothing was changed.',
  DATABASE_IMPORT_FAILED:
    'The database in this backup could not be loaded. Your site was left as it was.',
  SITE_NOT_FOUND: 'Your site could not be found on its server.',
  SITE_TOO_LARGE: "Your site is larger than this server's backup limit. Nothing was backed up.",
  INTERRUPTED: 'The job was interrupted before it finished. Your site was left as it was.',
  TIMED_OUT: 'The job took longer than allowed and was stopped. Your site was left as it was.',
  BACKUP_FAILED: 'The backup could not be completed.',
  RESTORE_FAILED: 'The restore could not be completed. Your site was left as it was.',
};

export function customerMessage(code: string, scriptMessage?: string | null): string {
  return scriptMessage?.trim() || MESSAGES[code] || 'Something went wrong. Our team has been told.';
}

/** Runs one job: claims the row, runs its script, keeps the row and the catalog in step. */
export class JobRunner {
  /**
   * Per customer, the end of the script last started for them on this node, and of the site
   * recovery after it. A job is COMPLETED before its script ends (the undo point, cleanup and
   * retention come after, under the customer's lock), so the customer's next job can be taken
   * by the other slot meanwhile: it waits here for that script, as long as it takes, instead of
   * in the script's flock, which gives up after BACKUPS_LOCK_WAIT_SECONDS and would fail the
   * job after a long housekeeping. The flock stays, for scripts run by hand or the CLI.
   */
  private readonly customerScripts = new Map<number, Promise<void>>();

  constructor(private readonly deps: JobRunnerDeps) {}

  private async publish(job: Pick<IBackupJob, 'id'>, customerId: number): Promise<void> {
    await publishJobChanged(this.deps.redis, this.deps.prefix, { id: job.id, customerId });
  }

  /** Writes the row (only while it is RUNNING, when `whileRunning`) and publishes the change. */
  private async update(
    jobId: number,
    customerId: number,
    data: Partial<IBackupJob>,
    whileRunning = false,
  ): Promise<void> {
    const where = whileRunning ? { id: jobId, status: 'running' as const } : { id: jobId };
    const changed = await this.deps.orm.em.fork().nativeUpdate(BackupJob, where, data);
    if (changed > 0 || !whileRunning) await this.publish({ id: jobId }, customerId);
  }

  /**
   * Runs the job with the given id if it is still PENDING (a cancelled or finished job is
   * skipped). Returns the final status, or null when skipped.
   */
  async run(jobId: number, signal?: AbortSignal): Promise<JobStatus | null> {
    const em = this.deps.orm.em.fork();
    const claimed = await em.nativeUpdate(
      BackupJob,
      { id: jobId, status: 'pending' },
      { status: 'running', startedAt: new Date(), heartbeatAt: new Date(), progress: 0 },
    );
    if (claimed === 0) return null;
    const job = await em.findOneOrFail(BackupJob, jobId, { populate: ['customer'] });
    const customerId = job.customer.id;
    const log = this.deps.logger.child({ jobId, customerId, kind: job.kind });
    log.info({ scope: job.scope, source: job.source }, 'job started');
    await this.publish(job, customerId);
    const started = Date.now();

    const heartbeat = setInterval(() => {
      void em
        .fork()
        .nativeUpdate(BackupJob, { id: jobId, status: 'running' }, { heartbeatAt: new Date() })
        .catch((error: unknown) => log.warn({ err: error }, 'heartbeat failed'));
    }, this.deps.heartbeatMs);

    const state = {
      phase: null as string | null,
      progress: 0,
      lastWrite: 0,
      madeSnapshot: false,
      /** Set once the script said the job is done (`completed`) and the row says COMPLETED. */
      completedAt: null as number | null,
    };
    let pendingWrite: Partial<IBackupJob> = {};
    let flushTimer: NodeJS.Timeout | undefined;
    const flush = async () => {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = undefined;
      if (Object.keys(pendingWrite).length === 0 || state.completedAt !== null) return;
      const data = pendingWrite;
      pendingWrite = {};
      state.lastWrite = Date.now();
      // Never over a final status: a late progress write must not touch a COMPLETED row.
      await this.update(jobId, customerId, data, true);
    };
    // A few writes per second at most: progress lines can arrive much faster.
    const schedule = async (data: Partial<IBackupJob>, immediate: boolean) => {
      if (state.completedAt !== null) return;
      pendingWrite = { ...pendingWrite, ...data };
      if (immediate || Date.now() - state.lastWrite >= 250) return flush();
      flushTimer ??= setTimeout(() => void flush(), 250 - (Date.now() - state.lastWrite));
    };

    // The script's `completed`: the row is COMPLETED now, while the script goes on with its
    // housekeeping (cleanup, retention) under the customer lock and this job's concurrency
    // slot; nothing after it can turn the job FAILED.
    const complete = async () => {
      if (state.completedAt !== null) return;
      if (job.kind === 'backup' && !state.madeSnapshot) {
        log.warn('the script reported completion without a snapshot: waiting for its end');
        return;
      }
      await flush();
      state.completedAt = Date.now();
      pendingWrite = {};
      await this.update(
        jobId,
        customerId,
        { status: 'completed', progress: 1, phase: null, etaSeconds: null, finishedAt: new Date() },
        true,
      );
      const seconds = (state.completedAt - started) / 1000;
      this.deps.metrics?.observe(job.kind, 'completed', seconds);
      log.info({ status: 'completed', seconds }, 'job finished; housekeeping continues');
    };

    const onEvent = async (event: ScriptEvent) => {
      switch (event.type) {
        case 'phase':
          if (state.completedAt !== null) {
            log.info({ phase: event.phase }, 'housekeeping phase');
            break;
          }
          state.phase = event.phase;
          state.progress = overallProgress(job.kind, event.phase, 0, state.progress);
          log.info({ phase: event.phase }, 'phase');
          await schedule(
            {
              phase: event.phase,
              progress: state.progress,
              bytesDone: null,
              bytesTotal: null,
              etaSeconds: null,
            },
            true,
          );
          break;
        case 'progress': {
          // Steps that run side by side: only the current phase's progress is shown.
          if (state.completedAt !== null || (event.phase && event.phase !== state.phase)) break;
          const fraction = event.fraction ?? (event.total ? (event.done ?? 0) / event.total : 0);
          state.progress = overallProgress(job.kind, state.phase, fraction, state.progress);
          await schedule(
            {
              progress: state.progress,
              bytesDone: event.done ?? null,
              bytesTotal: event.total ?? null,
              etaSeconds: event.eta == null ? null : Math.round(event.eta),
            },
            false,
          );
          break;
        }
        case 'snapshot': {
          const facts = readTags(event.tags);
          const source = event.kind === 'safety' ? 'safety' : job.source;
          await recordSnapshot(em, {
            customerId,
            source,
            scope: facts.scope ?? job.scope,
            snapshot: event,
            jobId,
          });
          if (event.kind === 'safety') {
            // A restore's undo point is stored after the switch-over, when the job is
            // COMPLETED already: it is added to the finished row.
            if (state.completedAt !== null) {
              await this.update(jobId, customerId, { safetySnapshotId: event.id });
            } else await schedule({ safetySnapshotId: event.id }, true);
          } else if (job.kind === 'backup') {
            await schedule({ snapshotId: event.id }, true);
            state.madeSnapshot = true;
          }
          break;
        }
        case 'completed':
          await complete();
          break;
        case 'retention': {
          // The script's retention forgets within one tag set: manual/daily after a backup,
          // safety after a restore's undo point.
          const source = job.kind === 'restore' ? 'safety' : job.source;
          if (event.deferred) {
            log.warn({ source }, 'retention deferred: the repository is busy');
            this.deps.onRetentionDeferred?.(customerId, source);
            break;
          }
          const removed = await forgetSnapshots(em, customerId, source, event.removed);
          log.info({ removed }, 'retention applied');
          break;
        }
        case 'maintenance':
          log.info({ on: event.on, at: event.at }, 'maintenance');
          break;
        case 'error':
          log.warn(
            {
              code: event.code,
              message: event.message,
              afterCompletion: state.completedAt !== null,
            },
            'script error',
          );
          break;
        default:
          break;
      }
    };

    const previous = this.customerScripts.get(customerId);
    let scriptEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => {
      scriptEnded = resolve;
    });
    this.customerScripts.set(customerId, ended);
    let result: ScriptResult;
    try {
      if (previous) {
        log.info("waiting for the customer's previous script to end");
        await previous;
      }
      if (signal?.aborted) {
        // The worker stopped meanwhile: the job goes back to PENDING, its script never ran.
        result = { exitCode: 0, timedOut: false, aborted: true, lastError: null, stderrTail: '' };
      } else {
        result = await this.deps.scripts.run(
          job.kind === 'backup' ? 'customer-backup' : 'customer-restore',
          this.argsFor(job),
          {
            onEvent,
            signal,
            timeoutMs:
              job.kind === 'backup' ? this.deps.backupTimeoutMs : this.deps.restoreTimeoutMs,
          },
        );
      }
    } catch (error) {
      log.error({ err: error }, 'the script could not be started');
      result = { exitCode: 1, timedOut: false, aborted: false, lastError: null, stderrTail: '' };
    } finally {
      clearInterval(heartbeat);
    }
    try {
      await flush();
      // A script that did not end by its own rollback (killed after the grace period, or
      // crashed) may have left the site mid-way: put it back in order before anything else,
      // the customer's next job included.
      if (
        result.exitCode !== SCRIPT_EXIT.ok &&
        result.exitCode !== SCRIPT_EXIT.interrupted &&
        result.exitCode > 128
      ) {
        const recovered = await recoverSite(
          this.deps.scripts,
          customerId,
          recordRecoveredUndoPoints(this.deps),
        );
        log.warn(
          { exitCode: result.exitCode, recovered: recovered.exitCode },
          'script killed: site recovered',
        );
      }
    } finally {
      scriptEnded();
      if (this.customerScripts.get(customerId) === ended) this.customerScripts.delete(customerId);
    }

    if (state.completedAt !== null) {
      // Done before the script ended: a failure, time-out or shutdown since then only cut the
      // housekeeping short (the next run, or the deferred retention, catches up).
      if (result.exitCode !== SCRIPT_EXIT.ok || result.timedOut || result.aborted) {
        log.warn(
          {
            exitCode: result.exitCode,
            timedOut: result.timedOut,
            aborted: result.aborted,
            error: result.lastError,
          },
          'housekeeping after the job ended did not finish; the job stays COMPLETED',
        );
      }
      return 'completed';
    }

    if (result.aborted) {
      // Worker shutdown: the script rolled back; hand the job back to run again on start.
      await this.update(jobId, customerId, {
        status: 'pending',
        phase: null,
        progress: 0,
        bytesDone: null,
        bytesTotal: null,
        etaSeconds: null,
        startedAt: null,
        heartbeatAt: null,
      });
      log.info('job handed back for the next start');
      return 'pending';
    }

    const final = await em.fork().findOneOrFail(BackupJob, jobId);
    const succeeded = result.exitCode === SCRIPT_EXIT.ok && !result.timedOut;
    const madeSnapshot = job.kind === 'restore' || Boolean(final.snapshotId);
    let status: JobStatus;
    if (succeeded && madeSnapshot) {
      status = 'completed';
      await this.update(jobId, customerId, {
        status,
        progress: 1,
        phase: null,
        etaSeconds: null,
        finishedAt: new Date(),
      });
    } else {
      status = 'failed';
      const code = result.timedOut
        ? 'TIMED_OUT'
        : (result.lastError?.code ??
          (succeeded
            ? 'BACKUP_FAILED'
            : job.kind === 'backup'
              ? 'BACKUP_FAILED'
              : 'RESTORE_FAILED'));
      const message = result.timedOut
        ? customerMessage('TIMED_OUT')
        : customerMessage(code, result.lastError?.message);
      if (!result.lastError)
        log.warn(
          { exitCode: result.exitCode, stderr: result.stderrTail },
          'script failed without an error event',
        );
      await this.update(jobId, customerId, {
        status,
        phase: null,
        errorCode: code,
        errorMessage: message,
        etaSeconds: null,
        finishedAt: new Date(),
      });
    }
    this.deps.metrics?.observe(job.kind, status, (Date.now() - started) / 1000);
    log.info({ status, seconds: (Date.now() - started) / 1000 }, 'job finished');
    return status;
  }

  private argsFor(job: IBackupJob): string[] {
    const id = String(job.customer.id);
    if (job.kind === 'backup') {
      const args = [id, SCOPE_ARG[job.scope], '--job', String(job.id)];
      args.push('--source', job.source === 'daily' ? 'daily' : 'manual');
      if (job.label) args.push('--label', job.label);
      return args;
    }
    if (!job.snapshotId) throw new Error(`restore job ${job.id} has no snapshot id`);
    return [id, job.snapshotId, SCOPE_ARG[job.scope], job.source, '--job', String(job.id)];
  }
}
