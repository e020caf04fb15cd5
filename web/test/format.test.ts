import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatDuration,
  formatTimeLeft,
  jobOutcome,
  phaseWords,
  restoreChoices,
} from '../src/format';

describe('words and numbers for customers', () => {
  it('puts every known phase in words and humanises unknown ones', () => {
    expect(phaseWords('DUMPING_DATABASE')).toBe('Saving your database');
    expect(phaseWords('SAFETY_SNAPSHOT')).toBe('Preparing an undo point');
    expect(phaseWords('SWAPPING')).toBe('Switching your site over (maintenance mode)');
    expect(phaseWords('ROLLING_BACK')).toMatch(/putting your site back/);
    expect(phaseWords('COMPACTING_INDEX')).toBe('Compacting index');
    expect(phaseWords(null)).toBe('Waiting to start');
  });

  it('shows byte counts the way a hosting panel does', () => {
    expect(formatBytes(0)).toBe('0 bytes');
    expect(formatBytes(1)).toBe('1 byte');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(250 * 1024 ** 2)).toBe('250 MB');
    expect(formatBytes(5 * 1024 ** 4)).toBe('5.0 TB');
    expect(formatBytes(null)).toBe('—');
  });

  it('shows durations and time left', () => {
    expect(formatDuration(12)).toBe('12 s');
    expect(formatDuration(250)).toBe('4 min 10 s');
    expect(formatDuration(3600 + 300)).toBe('1 h 5 min');
    expect(formatTimeLeft(3)).toBe('Almost done');
    expect(formatTimeLeft(90)).toBe('About 1 min 30 s left');
    expect(formatTimeLeft(null)).toBeNull();
  });

  it('offers only the restore choices a snapshot contains', () => {
    expect(restoreChoices('BOTH')).toEqual(['DATABASE', 'FILES', 'BOTH']);
    expect(restoreChoices('DATABASE')).toEqual(['DATABASE']);
    expect(restoreChoices('FILES')).toEqual(['FILES']);
  });

  it('tells what happened when a job ends', () => {
    expect(jobOutcome({ kind: 'BACKUP', status: 'COMPLETED', errorMessage: null })).toBe(
      'Backup finished.',
    );
    expect(jobOutcome({ kind: 'RESTORE', status: 'COMPLETED', errorMessage: null })).toBe(
      'Restore finished — your site is back online.',
    );
    expect(
      jobOutcome({ kind: 'BACKUP', status: 'FAILED', errorMessage: 'The backup storage is full.' }),
    ).toBe('Backup failed: The backup storage is full.');
  });
});
