import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/config.js';

describe('configuration', () => {
  it('runs locally with no variables at all', () => {
    const cfg = parseConfig({});
    expect(cfg.BACKUPS_DB_HOST).toBe('127.0.0.1');
    expect(cfg.BACKUPS_REDIS_URL).toBe('redis://127.0.0.1:6379/0');
    expect(cfg.BACKUPS_DATA_DIR).toMatch(/\/data$/);
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      parseConfig({
        BACKUPS_API_PORT: 'eighty',
        BACKUPS_DB_PORT: '99999',
        BACKUPS_REDIS_URL: 'http://not-redis',
        BACKUPS_DAILY_AT: '25:00',
        BACKUPS_NODE: 'Bad Host!',
        BACKUPS_DB_NAME: 'x; drop database y',
        BACKUPS_API_HOST: '127.0.0.1',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.map((p) => p.split(':')[0]);
    expect(problems.sort()).toEqual(
      [
        'BACKUPS_API_PORT',
        'BACKUPS_DAILY_AT',
        'BACKUPS_DB_NAME',
        'BACKUPS_DB_PORT',
        'BACKUPS_NODE',
        'BACKUPS_REDIS_URL',
      ].sort(),
    );
    expect((error as Error).message).toContain('BACKUPS_DAILY_AT');
  });

  it("refuses an application database in the customer databases' namespace", () => {
    // The scripts' account holds `customer\_%`: a restore's account would reach this one.
    expect(() => parseConfig({ BACKUPS_DB_NAME: 'customer_backups' })).toThrow(
      /BACKUPS_DB_NAME: must not start with customer_/,
    );
    expect(parseConfig({ BACKUPS_DB_NAME: 'backups' }).BACKUPS_DB_NAME).toBe('backups');
  });
});
