import { describe, expect, it } from 'vitest';
import { drillsOnDay } from './weekly-drills.js';

const DAY = 86_400_000;

describe('the weekly drills', () => {
  it('spreads 70 customers over 7 days, at most 11 a day, each once a week', () => {
    // ids as a real node has them: sparse, unordered
    const ids = Array.from({ length: 70 }, (_, i) => 1000 + i * 37 + ((i * i) % 11));
    const shuffled = [...ids].reverse();
    const start = new Date('2026-12-07T02:00:00Z');
    const days = Array.from({ length: 7 }, (_, d) =>
      drillsOnDay(shuffled, new Date(start.getTime() + d * DAY)),
    );
    for (const day of days) expect(day.length).toBeLessThanOrEqual(11);
    expect(days.flat().sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    // the next week repeats the same days
    expect(drillsOnDay(ids, new Date(start.getTime() + 7 * DAY))).toEqual(days[0]);
  });

  it('gives every day a drill or none, never two of one customer in a week, for any count', () => {
    for (const n of [0, 1, 6, 7, 8, 71, 500]) {
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const week = Array.from({ length: 7 }, (_, d) => drillsOnDay(ids, new Date(d * DAY)));
      expect(week.flat()).toHaveLength(n);
      expect(new Set(week.flat()).size).toBe(n);
      expect(Math.max(...week.map((d) => d.length))).toBe(Math.ceil(n / 7));
    }
  });
});
