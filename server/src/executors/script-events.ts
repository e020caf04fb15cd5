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
    deferred: z.boolean().optional(),
  }),
  z.object({ type: z.literal('maintenance'), on: z.boolean(), at: z.number().optional() }),
  z.object({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(2000) }),
  z.object({ type: z.literal('recovered'), action: z.string() }),
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
export type SnapshotEvent = Extract<ScriptEvent, { type: 'snapshot' }>;

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
