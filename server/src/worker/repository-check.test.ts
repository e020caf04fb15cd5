import { describe, expect, it } from 'vitest';
import { checkSubset } from './repository-check.js';

describe('the rotating repository check', () => {
  it('reads each of N groups once in N consecutive weeks, then starts again', () => {
    const week = 7 * 86_400_000;
    const start = new Date('2026-12-06T03:00:00Z');
    const four = Array.from({ length: 4 }, (_, i) =>
      checkSubset(new Date(start.getTime() + i * week), 4),
    );
    expect([...four].sort()).toEqual(['1/4', '2/4', '3/4', '4/4']);
    expect(checkSubset(new Date(start.getTime() + 4 * week), 4)).toBe(four[0]);
    // the same week gives the same group, whichever day of it
    expect(checkSubset(new Date(start.getTime() + 86_400_000), 4)).toBe(
      checkSubset(new Date(Math.floor(start.getTime() / week) * week), 4),
    );
    expect(checkSubset(start, 1)).toBe('1/1');
  });
});
