import { randomBytes } from 'node:crypto';
import { MikroORM } from '@mikro-orm/mariadb';
import { parseConfig } from '../../src/config/config.js';
import { ormOptions } from '../../src/db/orm.js';

export interface TestDatabase {
  orm: MikroORM;
  name: string;
  drop(): Promise<void>;
}

/** A throw-away application database, migrated, for one test file. */
export async function createTestDatabase(
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const name = `backups_test_${randomBytes(5).toString('hex')}`;
  const cfg = { ...parseConfig({}), BACKUPS_DB_NAME: name };
  const admin = await MikroORM.init({ ...ormOptions({ ...cfg, BACKUPS_DB_NAME: 'mysql' }) });
  await admin.em
    .getConnection()
    .execute(`create database \`${name}\` character set utf8mb4 collate utf8mb4_unicode_ci`);
  await admin.close(true);
  const orm = await MikroORM.init({ ...ormOptions(cfg), ensureDatabase: false });
  if (options.migrate !== false) await orm.migrator.up();
  // Customer ids name real databases (customer_<id>) shared by every test on this server:
  // start each file's ids far apart so parallel files never collide.
  const offset = 1_000_000 + Math.floor(Math.random() * 2_000_000_000);
  if (options.migrate !== false) {
    await orm.em.getConnection().execute(`alter table customers auto_increment = ${offset}`);
  }
  return {
    orm,
    name,
    async drop() {
      await orm.em.getConnection().execute(`drop database if exists \`${name}\``);
      await orm.close(true);
    },
  };
}
