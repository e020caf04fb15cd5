/**
 * Each phase of a job covers a slice of the job's overall progress (0..1), so the bar moves
 * steadily across phases. Weights reflect where the time goes on a typical site.
 */
const BACKUP_PHASES: Record<string, [number, number]> = {
  PREPARING: [0, 0.02],
  DUMPING_DATABASE: [0.02, 0.15],
  UPLOADING: [0.15, 0.95],
  APPLYING_RETENTION: [0.95, 0.99],
};

const RESTORE_PHASES: Record<string, [number, number]> = {
  VERIFYING: [0, 0.03],
  CHECKING_SPACE: [0.03, 0.05],
  // the safety repository's check (the undo point itself is stored after COMPLETED)
  SAFETY_SNAPSHOT: [0.05, 0.15],
  DOWNLOADING: [0.15, 0.8],
  IMPORTING_DATABASE: [0.8, 0.93],
  SWAPPING: [0.93, 0.99],
};

export function phaseRange(kind: 'backup' | 'restore', phase: string): [number, number] | null {
  return (kind === 'backup' ? BACKUP_PHASES : RESTORE_PHASES)[phase] ?? null;
}

/** Overall progress for a fraction of the current phase; never goes backwards. */
export function overallProgress(
  kind: 'backup' | 'restore',
  phase: string | null,
  fraction: number,
  previous: number,
): number {
  const range = phase ? phaseRange(kind, phase) : null;
  if (!range) return previous;
  const [start, end] = range;
  const value = start + (end - start) * Math.min(1, Math.max(0, fraction));
  return Math.max(previous, Math.round(value * 1000) / 1000);
}
