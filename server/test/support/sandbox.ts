/**
 * The throw-away parts a test system is built from, each made by one small function and undone
 * by the one beside it: root statements for MariaDB, free ports, an application database, a data
 * folder with its restic repositories and the scripts' environment, a Redis prefix, customer
 * sites and customer databases. The executors' and the worker's tests, the browser tests
 * (e2e/support/global-setup.ts) and the bench (bench/src/env.ts) compose them; nginx and its
 * certificate are in loopback-nginx.ts.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MikroORM } from '@mikro-orm/mariadb';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/config.js';
import { projectRoot } from '../../src/config/paths.js';
import { ormOptions } from '../../src/db/orm.js';

// --- MariaDB as root, free ports -------------------------------------------------------------

/** Runs SQL as root over the server's socket and returns the tab-separated rows. */
export async function sql(statement: string, database?: string): Promise<string> {
  const args = ['-uroot', '-N', '-B'];
  if (database) args.push(database);
  const r = await execa('mariadb', [...args, '-e', statement]);
  return r.stdout;
}

/** A port nobody listens on right now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

// --- the application database ----------------------------------------------------------------

/** Customer ids from `from` to `from + span`. */
export interface IdRange {
  from: number;
  span: number;
}

/**
 * Customer ids name real databases (customer_<id>) on a MariaDB server every test, the browser
 * tests and the bench share: each starts its ids at random in a range of its own.
 */
export const CUSTOMER_IDS = {
  /** The executors' tests, which have no application database (randomCustomerId). */
  executors: { from: 700_000_000, span: 99_000_000 },
  /** A test file's application database: far apart, so parallel files never collide. */
  tests: { from: 1_000_000, span: 2_000_000_000 },
  /** The browser tests: far from 1 and from the executors' tests. */
  e2e: { from: 1_000_000_000, span: 900_000_000 },
  /** The bench: far from the tests' ranges. */
  bench: { from: 2_200_000_000, span: 1_900_000_000 },
} satisfies Record<string, IdRange>;

const idIn = (range: IdRange) => range.from + Math.floor(Math.random() * range.span);

/** A customer id for a test that makes no customer row. */
export function randomCustomerId(): number {
  return idIn(CUSTOMER_IDS.executors);
}

/** An empty application database `<prefix>_<random>`; drop() removes it. */
export async function createAppDatabase(
  prefix = 'backups_test',
): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await sql(`create database \`${name}\` character set utf8mb4 collate utf8mb4_unicode_ci`);
  return {
    name,
    async drop() {
      await sql(`drop database if exists \`${name}\``);
    },
  };
}

/** The next customer row of a migrated application database gets an id in `range`. */
export async function startCustomerIds(database: string, range: IdRange): Promise<void> {
  await sql(`alter table \`${database}\`.customers auto_increment = ${idIn(range)}`);
}

export interface TestDatabase {
  orm: MikroORM;
  name: string;
  drop(): Promise<void>;
}

/** A throw-away application database, migrated, with an ORM on it (for one test file). */
export async function createTestDatabase(
  options: { migrate?: boolean; prefix?: string; customerIds?: IdRange; poolMax?: number } = {},
): Promise<TestDatabase> {
  const database = await createAppDatabase(options.prefix);
  const cfg = { ...parseConfig({}), BACKUPS_DB_NAME: database.name, poolMax: options.poolMax };
  const orm = await MikroORM.init({ ...ormOptions(cfg), ensureDatabase: false });
  if (options.migrate !== false) {
    await orm.migrator.up();
    await startCustomerIds(database.name, options.customerIds ?? CUSTOMER_IDS.tests);
  }
  return {
    orm,
    name: database.name,
    async drop() {
      await orm.close(true);
      await database.drop();
    },
  };
}

// --- the data folder, its repositories and the scripts' environment ---------------------------

export const SCRIPTS_DIR = path.join(projectRoot, 'scripts');
export const script = (name: string) => path.join(SCRIPTS_DIR, name);

export interface DataDir {
  dataDir: string;
  customersRoot: string;
  /** secrets/customer-db.cnf: root over the server's socket. */
  customerDbDefaultsFile: string;
  /** The scripts' environment: PATH and the data folder's places (add the site commands). */
  env: Record<string, string>;
}

/**
 * A data folder (a new temp folder, or `dir`): customers/, and secrets/ with the customer-db
 * defaults file (root over the socket). Its repositories come with initRepositories().
 */
export async function createDataDir(
  options: { dir?: string; tmpPrefix?: string } = {},
): Promise<DataDir> {
  const dataDir =
    options.dir ?? (await mkdtemp(path.join(tmpdir(), options.tmpPrefix ?? 'backups-test-')));
  // Passable by other users (never listable), as a node's sites' root is for nginx: a drill's
  // database server runs as mysql in a folder below it (scripts/lib/sandbox-db.sh).
  if (!options.dir) await chmod(dataDir, 0o711);
  const customersRoot = path.join(dataDir, 'customers');
  await mkdir(customersRoot, { recursive: true });
  await mkdir(path.join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  const cnf = path.join(dataDir, 'secrets', 'customer-db.cnf');
  await writeFile(cnf, '[client]\nuser=root\nsocket=/run/mysqld/mysqld.sock\n', { mode: 0o600 });
  return {
    dataDir,
    customersRoot,
    customerDbDefaultsFile: cnf,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      BACKUPS_ENV_FILE: path.join(dataDir, 'none.env'),
      BACKUPS_DATA_DIR: dataDir,
      BACKUPS_CUSTOMERS_ROOT: customersRoot,
      BACKUPS_CUSTOMER_DB_DEFAULTS_FILE: cnf,
    },
  };
}

/** The manual and daily repositories of the data folder `env` names (backup-repository init). */
export async function initRepositories(env: Record<string, string>): Promise<void> {
  for (const kind of ['manual', 'daily']) {
    const r = await execa(script('backup-repository'), [kind, 'init'], {
      env,
      extendEnv: false,
      reject: false,
    });
    if (r.exitCode !== 0) throw new Error(`init ${kind} failed: ${r.stderr}`);
  }
}

/** The environment that points restic itself at one of the data folder's repositories. */
export function repositoryEnv(dataDir: string, kind: 'manual' | 'daily'): Record<string, string> {
  return {
    RESTIC_REPOSITORY: path.join(dataDir, 'repos', kind),
    RESTIC_PASSWORD_FILE: path.join(dataDir, 'secrets', `${kind}-repository.pass`),
    RESTIC_CACHE_DIR: path.join(dataDir, 'cache/restic'),
  };
}

export async function removeDataDir(dir: DataDir | undefined): Promise<void> {
  if (dir) await rm(dir.dataDir, { recursive: true, force: true });
}

// --- Redis ------------------------------------------------------------------------------------

export const REDIS_URL = 'redis://127.0.0.1:6379/0';

/** A Redis prefix of one's own (queues, channels, leases). */
export function redisPrefix(tag = 't'): string {
  return `${tag}${randomBytes(5).toString('hex')}`;
}

/** Deletes every key under `prefix` (never FLUSHALL), with `redis` or a client of its own. */
export async function clearRedisPrefix(prefix: string, redis?: Redis): Promise<void> {
  const client = redis ?? new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    if (!redis) await client.quit();
  }
}

// --- customer sites and customer databases ----------------------------------------------------

/** The site's own database account, as a hosting company gives one: rights on its database alone. */
export const siteAccount = (id: number) => `'site_${id}'@'localhost'`;

/**
 * customer_<id> with a few tables, odd bytes, a view and a trigger, and the site's account;
 * `run` runs the statements as root (default: sql(), on the system server).
 */
export async function createCustomerDatabase(
  id: number,
  run: (statement: string) => Promise<unknown> = sql,
): Promise<void> {
  const db = `customer_${id}`;
  await run(`DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db} CHARACTER SET utf8mb4;
    CREATE USER IF NOT EXISTS ${siteAccount(id)} ACCOUNT LOCK;
    GRANT ALL PRIVILEGES ON \`customer\\_${id}\`.* TO ${siteAccount(id)};
    CREATE TABLE ${db}.posts (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200), body TEXT);
    CREATE TABLE ${db}.options (name VARCHAR(64) PRIMARY KEY, value VARCHAR(255));
    CREATE TABLE ${db}.media (id INT PRIMARY KEY, data BLOB);
    CREATE TABLE ${db}.audit (id INT AUTO_INCREMENT PRIMARY KEY, post_id INT);
    INSERT INTO ${db}.posts (title, body) VALUES ('Hello', 'First post'), ('Grüße', 'Über alles'), ('Third', 'x');
    INSERT INTO ${db}.options VALUES ('siteurl', 'https://c${id}.example'), ('theme', 'twenty');
    INSERT INTO ${db}.media VALUES (1, UNHEX('00FF10E2809C0D0A5C27220000FE'));
    USE ${db};
    CREATE DEFINER = ${siteAccount(id)} VIEW post_titles AS SELECT id, title FROM posts;
    CREATE DEFINER = ${siteAccount(id)} TRIGGER posts_audit AFTER INSERT ON posts FOR EACH ROW INSERT INTO audit (post_id) VALUES (NEW.id);`);
}

/** The customers' databases and every account made for them (the site's, and the restore's). */
export async function dropCustomerDatabases(ids: number | readonly number[]): Promise<void> {
  const all = typeof ids === 'number' ? [ids] : ids;
  for (let i = 0; i < all.length; i += 50) {
    await sql(
      all
        .slice(i, i + 50)
        .map(
          (id) =>
            `DROP DATABASE IF EXISTS customer_${id}; DROP DATABASE IF EXISTS customer_${id}__restore; DROP DATABASE IF EXISTS customer_${id}__previous; DROP DATABASE IF EXISTS customer_${id}__verify;
     DROP USER IF EXISTS ${siteAccount(id)}, 'backups_definer_${id}'@'localhost', 'backups_restore_${id}'@'localhost', 'backups_verify_${id}'@'localhost';`,
        )
        .join('\n'),
    );
  }
}

/** A small WordPress-like site: nested folders, a binary, odd names, modes. */
export async function buildSite(
  root: string,
  id: number,
  content = 'wordpress',
  seed = 'v1',
): Promise<string> {
  const site = path.join(root, `customer-${id}`);
  const dir = path.join(site, content);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(site, 'docker-compose.yml'),
    `services:\n  web:\n    image: wordpress # customer ${id}\n`,
  );
  for (let a = 0; a < 5; a++) {
    for (let b = 0; b < 6; b++) {
      const d = path.join(dir, `wp-content-${a}`, `plugins-${b}`);
      await mkdir(d, { recursive: true });
      for (let f = 0; f < 7; f++) {
        await writeFile(path.join(d, `file-${f}.php`), `<?php // ${seed} ${id} ${a}/${b}/${f}\n`);
      }
    }
  }
  const binary = Buffer.alloc(65_536);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 31 + seed.length * 7) & 0xff;
  await writeFile(path.join(dir, 'image.bin'), binary);
  await writeFile(path.join(dir, 'Grüße über.txt'), `non-ascii ${seed}\n`);
  await writeFile(path.join(dir, 'wp-config.php'), `<?php define('DB_PASSWORD', '${seed}');\n`);
  await chmod(path.join(dir, 'wp-config.php'), 0o600);
  await utimes(
    path.join(dir, 'image.bin'),
    new Date('2020-01-02T03:04:05.678Z'),
    new Date('2020-01-02T03:04:05.678Z'),
  );
  return site;
}
