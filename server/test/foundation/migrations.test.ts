import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const TABLES = [
  'api_tokens',
  'audit_events',
  'backup_jobs',
  'customers',
  'customer_identities',
  'downloads',
  'email_messages',
  'notification_settings',
  'sessions',
  'snapshots',
  'snapshot_entries',
  'snapshot_tables',
  'snapshot_verifications',
  'staff_accounts',
  'webhooks',
  'webhook_attempts',
  'webhook_messages',
];

async function tables(db: TestDatabase): Promise<string[]> {
  const rows = await db.orm.em
    .getConnection()
    .execute<{ name: string }[]>(
      'select table_name as name from information_schema.tables where table_schema = ? order by 1',
      [db.name],
    );
  return rows.map((r) => r.name).filter((n) => n !== 'mikro_orm_migrations');
}

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('apply to an empty database and create every table', async () => {
    expect(await tables(db)).toEqual([]);
    const applied = await db.orm.migrator.up();
    expect(applied.length).toBeGreaterThan(0);
    expect(await tables(db)).toEqual(TABLES);
    expect(await db.orm.migrator.getPendingMigrations()).toEqual([]);
  });

  it('roll back to an empty database, and apply again', async () => {
    await db.orm.migrator.down({ to: 0 });
    expect(await tables(db)).toEqual([]);
    await db.orm.migrator.up();
    expect(await tables(db)).toEqual(TABLES);
  });
});
