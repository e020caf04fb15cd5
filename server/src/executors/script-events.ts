import { z } from 'zod';

/** The NDJSON events the scripts print on stdout (DESIGN.md §6). Anything else is ignored. */
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const ScriptEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('phase'), phase: z.string().regex(/^[A-Z_]{1,40}$/) }),
  z.object({
    type: z.literal('progress'),
    done: z.number().nonnegative().optional(),
    total: z.number().nonnegative().optional(),
    // restic cannot estimate at 0 %: the scripts then send null
    eta: z.number().nonnegative().nullish(),
    fraction: z.number().min(0).max(1).optional(),
    // Steps that run side by side tag their progress with their phase: only the current
    // phase's progress is shown.
    phase: z
      .string()
      .regex(/^[A-Z_]{1,40}$/)
      .optional(),
  }),
  z.object({
    type: z.literal('snapshot'),
    kind: z.enum(['result', 'safety']),
    id: hex64,
    short_id: z.string().optional(),
    time: z.string(),
    paths: z.array(z.string()).default([]),
    tags: z.array(z.string()).default([]),
    size: z.number().nonnegative().nullish(),
  }),
  z.object({
    type: z.literal('retention'),
    removed: z.array(hex64).default([]),
    // the maintainer's retention of a shared repository: whose snapshots these were
    customer: z.number().int().positive().optional(),
    deferred: z.boolean().optional(),
    // the repository is append-only for this node: the maintainer applies retention
    appendOnly: z.boolean().optional(),
  }),
  z.object({ type: z.literal('maintenance'), on: z.boolean(), at: z.number().optional() }),
  z.object({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(2000) }),
  z.object({ type: z.literal('recovered'), action: z.string() }),
  // customer-restore could not undo a failed switch-over (say, the database server went away
  // meanwhile): the site stays in maintenance, stopped, until `--recover` succeeds.
  z.object({ type: z.literal('recovery_needed') }),
  // For the worker's metrics only (the script runner keeps them from the tasks): how each
  // restic run ended, and how long the script waited for the customer's lock.
  z.object({
    type: z.literal('restic'),
    command: z.string().regex(/^[a-z-]{1,20}$/),
    code: z.number().int().min(0).max(255),
  }),
  z.object({ type: z.literal('lock_wait'), seconds: z.number().nonnegative() }),
  // A restore drill's verdict on a snapshot (customer-verify).
  z.object({
    type: z.literal('verification'),
    status: z.enum(['verified', 'failed']),
    snapshot: hex64,
    restoreSeconds: z.number().nonnegative().nullish(),
    files: z.number().int().nonnegative().nullish(),
    bytes: z.number().nonnegative().nullish(),
    tables: z.number().int().nonnegative().nullish(),
    problem: z.string().max(2000).nullish(),
  }),
  // customer-index: what a snapshot holds of the customer (paths relative to the content
  // folder; mode as restic prints it), then the dump's tables.
  z.object({
    type: z.literal('index'),
    content: z.string().max(64),
    entries: z.number().int().nonnegative(),
    dump: z.boolean(),
  }),
  z.object({
    type: z.literal('entry'),
    path: z.string().min(1),
    entry: z.enum(['file', 'dir', 'symlink', 'other']),
    size: z.number().nonnegative().nullable(),
    mtime: z.string().nullable(),
    mode: z.number().int().nonnegative(),
  }),
  z.object({ type: z.literal('table'), name: z.string().min(1), size: z.number().nonnegative() }),
  // customer-download: the archive it built, in the node's download folder.
  z.object({
    type: z.literal('archive'),
    file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/),
    size: z.number().int().nonnegative(),
    sha256: hex64,
  }),
  // The job's outcome is final and good (backup: the snapshot exists; restore: the site is
  // switched over and open). What the script does after it is housekeeping.
  z.object({ type: z.literal('completed') }),
]);

export type ScriptEvent = z.infer<typeof ScriptEvent>;
/** The events that are about the run, not the job: they go to the runner's observer. */
export type RunEvent = Extract<ScriptEvent, { type: 'restic' | 'lock_wait' }>;
export type JobScriptEvent = Exclude<ScriptEvent, RunEvent>;
export type SnapshotEvent = Extract<ScriptEvent, { type: 'snapshot' }>;
export type VerificationEvent = Extract<ScriptEvent, { type: 'verification' }>;
export type EntryEvent = Extract<ScriptEvent, { type: 'entry' }>;

/** Parses one stdout line; null for a line that is not a known event. */
export function parseScriptEvent(line: string): ScriptEvent | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return null;
  try {
    const parsed = ScriptEvent.safeParse(JSON.parse(trimmed));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
