import type { EntityManager } from '@mikro-orm/mariadb';
import type { Config } from '../../config/config.js';
import type { ScriptEvent } from '../../executors/script-events.js';
import type { ScriptResult } from '../../executors/script-runner.js';
import type { Logger } from '../../infra/logger.js';
import type { SnapshotSource } from '../../snapshots/snapshot-scope.js';
import type { IBackupJob, JobKind } from '../job.entity.js';
import type { QueueLane } from '../job-queue.js';
import type { Announcement, JobRef, NewJob, RunningFields } from '../job-store.js';

/** The part of the job's overall progress (0..1) each phase covers, by phase name. */
export type PhaseWeights = Readonly<Record<string, readonly [number, number]>>;

/** Something an operator and the customer must hear of (a failed drill or check). */
export type Alert =
  | {
      type: 'verification_failed';
      customerId: number;
      snapshotId: string;
      jobId: number | null;
      problem: string;
    }
  | { type: 'repository_check_failed'; repository: string; problem: string };

/** The script's arguments and standard input, as a task's prepare found them. */
export interface PreparedScript {
  args: string[];
  input?: string;
}

/** A job its task refuses before the script runs: FAILED with this code and these words. */
export class TaskRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TaskRefusal';
  }
}

/** What a task may do while its script runs; the job runner provides it. */
export interface TaskContext {
  readonly job: IBackupJob;
  readonly config: Config;
  readonly ref: JobRef;
  readonly em: EntityManager;
  readonly log: Logger;
  /** True once the task said the job is done (the row is COMPLETED; housekeeping goes on). */
  readonly completed: boolean;
  /** Fields for the RUNNING row, merged with the runner's progress writes. */
  write(fields: RunningFields): Promise<void>;
  /** The job is done: COMPLETED now, with these fields; the script may go on. */
  complete(fields?: RunningFields): Promise<void>;
  /**
   * An event of this kind for the webhooks (and the e-mail it means), recorded in the same
   * transaction as the job's end, whichever it is (complete, or the failure the script ends in).
   */
  announce(announcement: Announcement): void;
  /** A restore's undo point, on the row whatever its status. */
  attachUndoPoint(snapshotId: string): Promise<void>;
  /** Retention that could not get the repository: applied later by the worker. */
  retentionDeferred(source: SnapshotSource): void;
  /** Metric, error log and an event for the webhooks. */
  alert(alert: Alert): Promise<void>;
  /**
   * Another job for the same customer, asked for by whoever asked for this one (a new
   * backup's index); null when the customer has one of that kind active already.
   */
  queueFollowUp(
    job: Pick<NewJob, 'kind' | 'scope' | 'source' | 'snapshotId'>,
  ): Promise<IBackupJob | null>;
  /** The worker's settings tasks read. */
  readonly settings: { indexNewBackups: boolean };
}

export type Outcome =
  | { status: 'completed'; fields?: RunningFields }
  | { status: 'failed'; code: string; message: string };

/**
 * One kind of job (DESIGN.md §2, "one task per job kind"): its script and arguments, time
 * limit, lane, phase weights, what its events mean, and how it ends. The job runner runs
 * tasks and knows no kind by name; a new kind is a new file, listed in tasks/index.ts.
 */
export interface Task {
  readonly kind: JobKind;
  /** The script under BACKUPS_SCRIPTS_DIR. */
  readonly script: string;
  args(job: IBackupJob): string[];
  /**
   * Arguments too long or too odd for argv (a partial restore's paths): each file's content is
   * written by the runner to a private scratch file (0600) removed after the script, and
   * `flag <file>` is added to the arguments.
   */
  argFiles?(job: IBackupJob): { flag: string; content: Buffer }[];
  /**
   * Optional, before the script: what needs the database (checks that may refuse the job with
   * a TaskRefusal, arguments kept in another table). Without it the script gets args(job).
   */
  prepare?(ctx: TaskContext): Promise<PreparedScript>;
  timeoutMs(config: Config): number;
  /**
   * A job that only reads the repository (no site, no database, no customer lock): it runs
   * beside the customer's backup or restore instead of after it, and a kill needs no recovery.
   */
  readonly readsOnly?: boolean;
  /** Which of the node's queues the job waits in. */
  lane(job: Pick<IBackupJob, 'kind' | 'source'>): QueueLane;
  readonly phases: PhaseWeights;
  /** Every event but phase and progress (the runner's): snapshots, completion, retention. */
  onEvent(event: ScriptEvent, ctx: TaskContext): Promise<void>;
  /** The lines of a listing its script passes through (RunOptions.onListing), in order. */
  onListing?(lines: string[], ctx: TaskContext): Promise<void>;
  /** How the job ends when its script ended before the task completed it. */
  outcome(result: ScriptResult, ctx: TaskContext): Outcome;
  /**
   * What puts the customer's things in order after its script was killed (default: the
   * restore's recovery, customer-restore --recover).
   */
  recovery?: { script: string; args(customerId: number): string[] };
  /**
   * A customer's own backup or restore goes first: a running job of this kind for the same
   * customer is stopped (its script cleans up) and queued again for later.
   */
  readonly yieldsToSiteJobs?: boolean;
}
