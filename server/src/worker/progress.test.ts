import { describe, expect, it } from 'vitest';
import { taskFor } from '../jobs/tasks/index.js';
import { overallProgress } from './progress.js';

describe('overall progress', () => {
  const phases = taskFor('backup').phases;

  it("covers each phase's slice of the job: half of UPLOADING is 55 %", () => {
    expect(overallProgress(phases, 'UPLOADING', 0, 0)).toBe(0.15);
    expect(overallProgress(phases, 'UPLOADING', 0.5, 0)).toBe(0.55);
    expect(overallProgress(phases, 'UPLOADING', 1, 0)).toBe(0.95);
  });

  it('never goes backwards, and stays put on a phase the task does not weigh', () => {
    expect(overallProgress(phases, 'DUMPING_DATABASE', 0, 0.6)).toBe(0.6);
    expect(overallProgress(phases, 'WARMING_CACHE', 0.9, 0.3)).toBe(0.3);
    expect(overallProgress(phases, null, 0.9, 0.3)).toBe(0.3);
  });

  it('clamps fractions outside 0..1', () => {
    expect(overallProgress(phases, 'UPLOADING', 7, 0)).toBe(0.95);
    expect(overallProgress(phases, 'UPLOADING', -1, 0)).toBe(0.15);
  });

  it("every task's phases are ordered slices of 0..1", () => {
    for (const kind of ['backup', 'restore'] as const) {
      let end = 0;
      for (const [start, stop] of Object.values(taskFor(kind).phases)) {
        expect(start).toBeGreaterThanOrEqual(end);
        expect(stop).toBeGreaterThan(start);
        expect(stop).toBeLessThanOrEqual(1);
        end = stop;
      }
    }
  });
});
