import path from 'node:path';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/mariadb';
import { Migrator } from '@mikro-orm/migrations';
import { migrationsList } from '../../../migrations/index.js';
import type { Config } from '../config/config.js';
import { projectRoot } from '../config/paths.js';
import { entities } from './entities.js';

export type OrmOptions = Pick<
  Config,
  | 'BACKUPS_DB_HOST'
  | 'BACKUPS_DB_PORT'
  | 'BACKUPS_DB_USER'
  | 'BACKUPS_DB_PASSWORD'
  | 'BACKUPS_DB_NAME'
> & { poolMax?: number; debug?: boolean };

export function ormOptions(cfg: OrmOptions): Options {
  return defineConfig({
    entities,
    host: cfg.BACKUPS_DB_HOST,
    port: cfg.BACKUPS_DB_PORT,
    user: cfg.BACKUPS_DB_USER,
    password: cfg.BACKUPS_DB_PASSWORD,
    dbName: cfg.BACKUPS_DB_NAME,
    timezone: '+00:00',
    forceUtcTimezone: true,
    allowGlobalContext: false,
    debug: cfg.debug ?? false,
    pool: { min: 0, max: cfg.poolMax ?? 10 },
    // The driver gives up connecting after 1 s by default; a busy host needs longer.
    driverOptions: { connection: { connectTimeout: 10_000 } },
    discovery: { warnWhenNoEntities: true },
    extensions: [Migrator],
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList,
      pathTs: path.join(projectRoot, 'migrations'),
      // MySQL commits DDL implicitly: a transaction around a migration would only pretend.
      transactional: false,
      allOrNothing: false,
      snapshot: false,
      emit: 'ts',
      silent: true,
    },
  });
}

export async function openOrm(cfg: OrmOptions): Promise<MikroORM> {
  return MikroORM.init(ormOptions(cfg));
}
