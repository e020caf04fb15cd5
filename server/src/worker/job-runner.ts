import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { Config } from '../config/config.js';
import { projectRoot } from '../config/paths.js';
import type { ICustomer } from '../customers/customer.entity.js';
import type { ScriptEvent } from '../executors/script-events.js';
import {
  recoverSite,
  SCRIPT_EXIT,
  type ScriptResult,
  type ScriptRunner,
} from '../executors/script-runner.js';
import type { Logger } from '../infra/logger.js';
import { type IBackupJob, type JobStatus, SITE_KINDS } from '../jobs/job.entity.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import { customerMessage } from '../jobs/job-messages.js';
import type { Announcement, JobRef, JobStore, RunningFields } from '../jobs/job-store.js';
import { taskFor } from '../jobs/tasks/index.js';
import {
  type Alert,
  type PreparedScript,
  type Task,
  type TaskContext,
  TaskRefusal,
} from '../jobs/tasks/task.js';
import type { SnapshotSource } from '../snapshots/snapshot-scope.js';
import type { JobMetrics } from './metrics.js';
import { overallProgress } from './progress.js';
import { ProgressWriter } from './progress-writer.js';
import { recordRecoveredUndoPoints } from './undo-points.js';

/** What the runner hears of a task's script: its events, and the lines of a listing it passes. */
interface ScriptHandlers {
  onEvent: (event: ScriptEvent) => Promise<void>;
  onListing?: (lines: string[]) => Promise<void>;
}

export interface JobRunnerDeps {
  orm: MikroORM;
  store: JobStore;
  scripts: ScriptRunner;
  logger: Logger;
  config: Pick<
    Config,
    | 'BACKUPS_BACKUP_TIMEOUT_SECONDS'
    | 'BACKUPS_RESTORE_TIMEOUT_SECONDS'
    | 'BACKUPS_HEARTBEAT_SECONDS'
    | 'BACKUPS_VERIFY_TIMEOUT_SECONDS'
    | 'BACKUPS_VERIFY_RETRY_SECONDS'
  > &
    Partial<Pick<Config, 'BACKUPS_DATA_DIR' | 'BACKUPS_NODE'>> &
    Partial<Pick<Config, 'BACKUPS_INDEX_TIMEOUT_SECONDS' | 'BACKUPS_INDEX_NEW_BACKUPS'>>;
  metrics?: JobMetrics;
  /** Failed drills and checks: metric, error log, event (worker/alerts.ts). */
  alerts?: { raise(alert: Alert): Promise<void> };
  /** Called when a job's retention had to wait for a busy repository. */
  onRetentionDeferred?: (customerId: number, source: SnapshotSource) => void;
  /**
   * A job's script failed after its job was COMPLETED (its housekeeping: say, the retention's
   * forget was killed after it had removed snapshots): the catalog may no longer match the
   * repository, so the worker syncs it soon instead of at the next hourly sync.
   */
  onHousekeepingFailed?: (customerId: number) => void;
  /** A job ended FAILED with this code (the worker decides what follows, e.g. a daily retry). */
  onFailed?: (job: Pick<IBackupJob, 'kind' | 'source'>, customerId: number, code: string) => void;
}

/**
 * The worker's own scratch folder on this node (argument files of its scripts), under the data
 * folder, never a shared /tmp: it names customers' files. Made private on first use.
 */
export async function workerScratch(
  config: Partial<Pick<Config, 'BACKUPS_DATA_DIR' | 'BACKUPS_NODE'>>,
): Promise<string> {
  const dataDir = config.BACKUPS_DATA_DIR ?? path.join(projectRoot, 'data');
  const dir = path.join(dataDir, 'work', `worker-${config.BACKUPS_NODE ?? 'local'}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return dir;
}

/** The script's last log lines, for the operator's log and the job's errorDetail. */
function tail(stderr: string, lines = 20): string {
  return stderr.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs jobs: claims the row, runs its task's script, turns the script's phases and progress
 * into the row, hands every other event to the task, and ends the job as the task says. It
 * knows no kind of job by name (tasks/index.ts does).
 */
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

  /**
   * Per customer, the running job that gives way to their own backup or restore (a drill):
   * its stop switch, and whether it was stopped for that reason.
   */
  private readonly yielding = new Map<
    number,
    { jobId: number; stop: AbortController; preempted: boolean }
  >();

  constructor(private readonly deps: JobRunnerDeps) {}

  /**
   * Runs the job with the given id if it is still PENDING (a cancelled or finished job is
   * skipped). Returns the final status, or null when skipped.
   */
  async run(jobId: number, shutdown?: AbortSignal): Promise<JobStatus | null> {
    const { store } = this.deps;
    let signal = shutdown;
    // Only while the customer lives on this node (a moved customer's stale entry is skipped).
    const job = await store.claim(jobId, this.deps.config.BACKUPS_NODE);
    if (!job) return null;
    const task = taskFor(job.kind);
    const ref: JobRef = { id: job.id, customerId: job.customer.id };
    const log = this.deps.logger.child({ jobId, customerId: ref.customerId, kind: job.kind });
    const site = (SITE_KINDS as readonly string[]).includes(job.kind);
    // A backup or restore of the customer is waiting or running: it goes first. (One whose job
    // is COMPLETED and whose script is at its housekeeping is waited for in runScript.)
    if (task.yieldsToSiteJobs && (await store.hasActiveSiteJob(ref.customerId))) {
      await this.later(ref, job, log);
      return 'pending';
    }
    let yielding: { jobId: number; stop: AbortController; preempted: boolean } | undefined;
    if (site) {
      this.preempt(ref.customerId, log);
    } else if (task.yieldsToSiteJobs) {
      yielding = { jobId, stop: new AbortController(), preempted: false };
      this.yielding.set(ref.customerId, yielding);
      signal = signal ? AbortSignal.any([signal, yielding.stop.signal]) : yielding.stop.signal;
    }
    try {
      return await this.runClaimed(task, job, ref, log, { signal, shutdown, yielding });
    } finally {
      if (yielding && this.yielding.get(ref.customerId) === yielding) {
        this.yielding.delete(ref.customerId);
      }
    }
  }

  /** The customer's own backup or restore starts: a drill of theirs stops (and cleans up). */
  private preempt(customerId: number, log: Logger): void {
    const running = this.yielding.get(customerId);
    if (!running || running.preempted) return;
    running.preempted = true;
    log.info({ stopped: running.jobId }, "a drill gives way to the customer's own job");
    running.stop.abort();
  }

  /** PENDING again, queued to run BACKUPS_VERIFY_RETRY_SECONDS from now. */
  private async later(ref: JobRef, job: IBackupJob, log: Logger): Promise<void> {
    const delayMs = this.deps.config.BACKUPS_VERIFY_RETRY_SECONDS * 1000;
    await this.deps.store.handBackLater(ref, job, delayMs).catch((error: unknown) => {
      // PENDING: the next start of the worker queues it again.
      log.warn({ err: error }, 'the job could not be queued again');
    });
    log.info({ delayMs }, "queued again, after the customer's own backup or restore");
  }

  private async runClaimed(
    task: Task,
    job: IBackupJob,
    ref: JobRef,
    log: Logger,
    stops: {
      signal: AbortSignal | undefined;
      shutdown: AbortSignal | undefined;
      yielding: { preempted: boolean } | undefined;
    },
  ): Promise<JobStatus | null> {
    const { signal, shutdown, yielding } = stops;
    const { store } = this.deps;
    const jobId = job.id;
    log.info({ scope: job.scope, source: job.source }, 'job started');
    const started = Date.now();
    const heartbeat = setInterval(() => {
      void store
        .heartbeat(jobId)
        .catch((error: unknown) => log.warn({ err: error }, 'heartbeat failed'));
    }, this.deps.config.BACKUPS_HEARTBEAT_SECONDS * 1000);

    const writer = new ProgressWriter((fields) => store.progress(ref, fields));
    let phase: string | null = null;
    let progress = 0;
    let completedAt: number | null = null;
    // Events of the task's kind, recorded with the job's end (a handed-back job drops them).
    const announcements: Announcement[] = [];
    const ctx: TaskContext = {
      job,
      config: this.deps.config as Config,
      ref,
      em: this.deps.orm.em.fork(),
      log,
      get completed() {
        return completedAt !== null;
      },
      write: async (fields: RunningFields) => {
        // A task's progress joins the runner's: the bar never goes back, whoever moved it
        // (an index's listing comes while the script is still VERIFYING).
        if (typeof fields.progress === 'number') {
          progress = Math.max(progress, fields.progress);
          fields = { ...fields, progress };
        }
        Object.assign(job, fields);
        await writer.write(fields, true);
      },
      complete: async (fields: RunningFields = {}) => {
        if (completedAt !== null) return;
        await writer.close();
        completedAt = Date.now();
        Object.assign(job, fields, { status: 'completed' });
        await store.complete(ref, fields, announcements.splice(0));
        const seconds = (completedAt - started) / 1000;
        this.deps.metrics?.observe(job.kind, 'completed', seconds);
        log.info({ status: 'completed', seconds }, 'job finished; housekeeping continues');
      },
      announce: (announcement) => {
        if (completedAt === null) announcements.push(announcement);
        else log.warn({ event: announcement.event }, 'an event after the job ended: dropped');
      },
      attachUndoPoint: async (snapshotId) => {
        job.safetySnapshotId = snapshotId;
        await store.attachUndoPoint(ref, snapshotId);
      },
      retentionDeferred: (source) => this.deps.onRetentionDeferred?.(ref.customerId, source),
      alert: async (alert) => {
        await this.deps.alerts?.raise(alert);
      },
      queueFollowUp: async (next) => {
        try {
          return await store.create({
            ...next,
            customer: job.customer as ICustomer,
            requestedByKind: job.requestedByKind,
            requestedById: job.requestedById ?? null,
          });
        } catch (error) {
          if (error instanceof JobInProgressError) return null;
          throw error;
        }
      },
      settings: { indexNewBackups: this.deps.config.BACKUPS_INDEX_NEW_BACKUPS ?? true },
    };

    const onEvent = async (event: ScriptEvent) => {
      if (event.type === 'phase') {
        if (completedAt !== null) {
          log.info({ phase: event.phase }, 'housekeeping phase');
          return;
        }
        phase = event.phase;
        progress = overallProgress(task.phases, phase, 0, progress);
        log.info({ phase }, 'phase');
        const reset = { bytesDone: null, bytesTotal: null, etaSeconds: null };
        await writer.write({ phase, progress, ...reset }, true);
        return;
      }
      if (event.type === 'progress') {
        // Steps that run side by side: only the current phase's progress is shown.
        if (completedAt !== null || (event.phase && event.phase !== phase)) return;
        const fraction = event.fraction ?? (event.total ? (event.done ?? 0) / event.total : 0);
        progress = overallProgress(task.phases, phase, fraction, progress);
        await writer.write(
          {
            progress,
            bytesDone: event.done ?? null,
            bytesTotal: event.total ?? null,
            etaSeconds: event.eta == null ? null : Math.round(event.eta),
          },
          false,
        );
        return;
      }
      if (event.type === 'maintenance') log.info({ on: event.on, at: event.at }, 'maintenance');
      if (event.type === 'error') {
        log.warn(
          { code: event.code, message: event.message, afterCompletion: completedAt !== null },
          'script error',
        );
        if (completedAt !== null) {
          this.deps.onHousekeepingFailed?.(ref.customerId);
          this.recoverLater(ref.customerId, log, shutdown);
        }
      }
      await task.onEvent(event, ctx);
    };

    const onListing = task.onListing
      ? (lines: string[]) => task.onListing?.(lines, ctx) ?? Promise.resolve()
      : undefined;

    let prepared: PreparedScript;
    try {
      prepared = task.prepare ? await task.prepare(ctx) : { args: task.args(job) };
    } catch (error) {
      clearInterval(heartbeat);
      await writer.close();
      const refusal = error instanceof TaskRefusal ? error : null;
      if (!refusal) log.error({ err: error }, 'the job could not be prepared');
      const code = refusal?.code ?? `${job.kind.toUpperCase()}_FAILED`;
      await store.fail(ref, { code, message: refusal?.message ?? customerMessage(code) });
      this.deps.metrics?.observe(job.kind, 'failed', (Date.now() - started) / 1000);
      log.info({ status: 'failed', code }, 'job refused before its script');
      return 'failed';
    }

    let result: ScriptResult;
    try {
      result = await this.runScript(task, job, prepared, { onEvent, onListing }, log, signal);
    } finally {
      clearInterval(heartbeat);
    }
    await writer.close();
    const seconds = () => (Date.now() - started) / 1000;

    if (completedAt !== null) {
      // Done before the script ended: a failure, time-out or shutdown since then only cut the
      // housekeeping short (the next run, or the deferred retention, catches up).
      if (result.exitCode !== SCRIPT_EXIT.ok || result.timedOut || result.aborted) {
        log.warn(
          {
            exitCode: result.exitCode,
            timedOut: result.timedOut,
            aborted: result.aborted,
            error: result.lastError,
            stderr: tail(result.stderrTail),
          },
          'housekeeping after the job ended did not finish; the job stays COMPLETED',
        );
      }
      await store.settle(ref);
      return 'completed';
    }

    if (result.aborted && yielding?.preempted && !shutdown?.aborted) {
      // Stopped for the customer's own backup or restore; its script removed its sandbox.
      await this.later(ref, job, log);
      return 'pending';
    }

    if (result.aborted) {
      // Worker shutdown: the script rolled back; the job runs again on the next start.
      await store.handBack(ref);
      log.info('job handed back for the next start');
      return 'pending';
    }

    const outcome = task.outcome(result, ctx);
    if (outcome.status === 'completed') {
      await store.complete(ref, outcome.fields, announcements);
      await store.settle(ref);
    } else {
      const detail = tail(result.stderrTail);
      log.warn(
        {
          code: outcome.code,
          exitCode: result.exitCode,
          timedOut: result.timedOut,
          stderr: detail,
        },
        'job failed',
      );
      await store.fail(
        ref,
        { code: outcome.code, message: outcome.message, detail },
        announcements,
      );
      this.deps.metrics?.jobFailed(job.kind, outcome.code);
      this.deps.onFailed?.(job, ref.customerId, outcome.code);
    }
    this.deps.metrics?.observe(job.kind, outcome.status, seconds());
    log.info({ status: outcome.status, seconds: seconds() }, 'job finished');
    return outcome.status;
  }

  /**
   * The task's script, after the customer's previous script on this node (and its recovery)
   * has ended. A script killed from outside (not by its own rollback) may have left the site
   * mid-way: it is put back in order before anything else, the customer's next job included.
   */
  private async runScript(
    task: Task,
    job: IBackupJob,
    prepared: PreparedScript,
    handlers: ScriptHandlers,
    log: Logger,
    signal: AbortSignal | undefined,
  ): Promise<ScriptResult> {
    if (task.readsOnly) return this.runReader(task, job, prepared, handlers, log, signal);
    const customerId = job.customer.id;
    // A drill neither waits for the customer's other scripts nor holds them up: it works in a
    // sandbox, scratch database and account of its own, and gives way when stopped.
    if (task.yieldsToSiteJobs) return this.runAlone(task, job, prepared, handlers, log, signal);
    return this.inCustomerTurn(customerId, log, async (): Promise<ScriptResult> => {
      if (signal?.aborted) {
        // The worker stopped meanwhile: the job goes back to PENDING, its script never ran.
        return { exitCode: 0, timedOut: false, aborted: true, lastError: null, stderrTail: '' };
      }
      let recoveryNeeded = false;
      let result: ScriptResult;
      try {
        result = await this.withArgFiles(task, job, prepared.args, (args) =>
          this.deps.scripts.run(task.script, args, {
            input: prepared.input,
            ...handlers,
            onEvent: async (event) => {
              if (event.type === 'recovery_needed') recoveryNeeded = true;
              await handlers.onEvent(event);
            },
            signal,
            timeoutMs: task.timeoutMs(this.deps.config as Config),
          }),
        );
      } catch (error) {
        log.error({ err: error }, 'the script could not be started');
        return { exitCode: 1, timedOut: false, aborted: false, lastError: null, stderrTail: '' };
      }
      if (result.exitCode > 128) {
        const recovered = await this.recoverOnce(customerId);
        log.warn(
          { exitCode: result.exitCode, recovered: recovered.exitCode },
          'script killed: site recovered',
        );
        recoveryNeeded = recovered.stillNeeded;
      }
      if (recoveryNeeded) await this.recoverUntilWhole(customerId, log, signal);
      return result;
    });
  }

  /**
   * A job's housekeeping failed after COMPLETED (say, its undo point could not be stored: the
   * staging disk full, the repository away): its journal, undo folder and scratch databases
   * stay for `customer-restore --recover`, which is run in the customer's turn a few seconds
   * later, and again with backoff (5 s doubling to 5 min, 10 tries) while it fails. The
   * customer's jobs run meanwhile (the site is whole); a run finding nothing to do is a no-op.
   */
  private recoverLater(
    customerId: number,
    log: Logger,
    shutdown: AbortSignal | undefined,
    attempt = 1,
    delayMs = 5_000,
  ): void {
    const timer = setTimeout(() => {
      if (shutdown?.aborted) return;
      void this.inCustomerTurn(customerId, log, () => this.recoverOnce(customerId)).then(
        (recovered) => {
          if (recovered.exitCode === 0) return;
          log.warn(
            { attempt, exitCode: recovered.exitCode, stderr: tail(recovered.stderrTail) },
            'the housekeeping left after a job could not be finished yet',
          );
          if (attempt < 10) {
            this.recoverLater(
              customerId,
              log,
              shutdown,
              attempt + 1,
              Math.min(delayMs * 2, 300_000),
            );
          }
        },
        (error: unknown) => log.error({ err: error }, 'finishing the housekeeping failed'),
      );
    }, delayMs);
    timer.unref();
  }

  /** Runs `work` after the customer's previous script on this node, holding their next ones. */
  private async inCustomerTurn<T>(
    customerId: number,
    log: Logger,
    work: () => Promise<T>,
  ): Promise<T> {
    const previous = this.customerScripts.get(customerId);
    let done: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.customerScripts.set(customerId, ended);
    try {
      if (previous) {
        log.info("waiting for the customer's previous script to end");
        const waitStarted = Date.now();
        await previous;
        this.deps.metrics?.waitedForLock('worker', (Date.now() - waitStarted) / 1000);
      }
      return await work();
    } finally {
      done();
      if (this.customerScripts.get(customerId) === ended) this.customerScripts.delete(customerId);
    }
  }

  /** One `customer-restore --recover`; `stillNeeded` when it could not make the site whole. */
  private async recoverOnce(
    customerId: number,
  ): Promise<{ exitCode: number; stillNeeded: boolean; stderrTail: string }> {
    const record = recordRecoveredUndoPoints(this.deps);
    let stillNeeded = false;
    const result = await recoverSite(this.deps.scripts, customerId, async (event) => {
      if (event.type === 'recovery_needed') stillNeeded = true;
      await record(event);
    });
    return { exitCode: result.exitCode, stillNeeded, stderrTail: result.stderrTail };
  }

  /**
   * A restore that could not undo its switch-over left the site in maintenance, part old and
   * part new (its database server went away, say): `customer-restore --recover` is retried,
   * with backoff, until the site is whole and open again. The customer's next scripts wait
   * (the caller holds their chain); a worker that stops meanwhile leaves the journal to the
   * recovery at its next start.
   */
  private async recoverUntilWhole(
    customerId: number,
    log: Logger,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for (let attempt = 1, delayMs = 500; ; attempt++, delayMs = Math.min(delayMs * 2, 8_000)) {
      if (signal?.aborted) {
        log.error('the site is still in maintenance: its recovery is left to the next start');
        return;
      }
      const recovered = await this.recoverOnce(customerId);
      if (!recovered.stillNeeded) {
        // Whole again (a recovery can fail after that, e.g. storing the undo point while the
        // safety repository is away: the catalog sync's recovery finishes it later).
        log.warn(
          { attempt, exitCode: recovered.exitCode },
          'the failed restore is undone: the site is whole',
        );
        return;
      }
      log.error(
        { attempt, exitCode: recovered.exitCode, stderr: tail(recovered.stderrTail) },
        'the failed restore could not be undone yet; the site stays in maintenance',
      );
      await sleep(delayMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * The task's arguments, with its argument files written to a private scratch folder of this
   * node's worker (0700, files 0600) for as long as the script runs.
   */
  private async withArgFiles<T>(
    task: Task,
    job: IBackupJob,
    baseArgs: readonly string[],
    run: (args: string[]) => Promise<T>,
  ): Promise<T> {
    const args = [...baseArgs];
    const files = task.argFiles?.(job) ?? [];
    if (files.length === 0) return run(args);
    const dir = await mkdtemp(path.join(await workerScratch(this.deps.config), `job-${job.id}-`));
    try {
      for (const [i, file] of files.entries()) {
        const name = path.join(dir, `arg-${i}`);
        await writeFile(name, file.content, { mode: 0o600, flag: 'wx' });
        args.push(file.flag, name);
      }
      return await run(args);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** A script that only reads the repository: beside the customer's others, no recovery. */
  private async runReader(
    task: Task,
    job: IBackupJob,
    prepared: PreparedScript,
    handlers: ScriptHandlers,
    log: Logger,
    signal: AbortSignal | undefined,
  ): Promise<ScriptResult> {
    try {
      return await this.withArgFiles(task, job, prepared.args, (args) =>
        this.deps.scripts.run(task.script, args, {
          input: prepared.input,
          ...handlers,
          signal,
          timeoutMs: task.timeoutMs(this.deps.config as Config),
        }),
      );
    } catch (error) {
      log.error({ err: error }, 'the script could not be started');
      return { exitCode: 1, timedOut: false, aborted: false, lastError: null, stderrTail: '' };
    }
  }

  /** A script that works beside the site: its own recovery after a kill, no queueing. */
  private async runAlone(
    task: Task,
    job: IBackupJob,
    prepared: PreparedScript,
    handlers: ScriptHandlers,
    log: Logger,
    signal: AbortSignal | undefined,
  ): Promise<ScriptResult> {
    if (signal?.aborted) {
      return { exitCode: 0, timedOut: false, aborted: true, lastError: null, stderrTail: '' };
    }
    const result = await this.runReader(task, job, prepared, handlers, log, signal);
    if (result.exitCode > 128 && task.recovery) {
      const recovered = await this.deps.scripts.run(
        task.recovery.script,
        task.recovery.args(job.customer.id),
        { timeoutMs: 30 * 60_000 },
      );
      log.warn(
        { exitCode: result.exitCode, recovered: recovered.exitCode },
        'script killed: cleaned up',
      );
    }
    return result;
  }
}
