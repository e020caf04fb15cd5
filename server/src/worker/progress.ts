import type { PhaseWeights } from '../jobs/tasks/task.js';

/**
 * Overall progress (0..1) for a fraction of the current phase, by the task's phase weights
 * (each phase covers a slice, so the bar moves steadily across phases); never goes backwards.
 * A phase the task does not weigh leaves the progress where it was.
 */
export function overallProgress(
  phases: PhaseWeights,
  phase: string | null,
  fraction: number,
  previous: number,
): number {
  const range = phase ? phases[phase] : undefined;
  if (!range) return previous;
  const [start, end] = range;
  const value = start + (end - start) * Math.min(1, Math.max(0, fraction));
  return Math.max(previous, Math.round(value * 1000) / 1000);
}
