// Test harness for the bash executors: a private data dir, repositories,
// customer sites and databases per test file, and helpers to run the scripts
// with an explicit environment (nothing BACKUPS_* inherited from the parent).
import { createHash } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

export const SCRIPTS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../scripts',
);
export const script = (name: string) => path.join(SCRIPTS_DIR, name);

export type Event = { type: string; [k: string]: unknown };

export interface TestEnv {
  dataDir: string;
  customersRoot: string;
  env: Record<string, string>;
  logFile: (id: number) => string;
}

export function randomCustomerId(): number {
  return 700_000_000 + Math.floor(Math.random() * 99_000_000);
}

/** A data dir with its own repositories; stop/start commands leave markers. */
export async function createTestEnv(extra: Record<string, string> = {}): Promise<TestEnv> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'executors-'));
  const customersRoot = path.join(dataDir, 'customers');
  await mkdir(customersRoot, { recursive: true });
  await mkdir(path.join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  const cnf = path.join(dataDir, 'secrets', 'customer-db.cnf');
  await writeFile(cnf, '[client]\nuser=root\nsocket=/run/mysqld/mysqld.sock\n', { mode: 0o600 });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dataDir,
    BACKUPS_ENV_FILE: path.join(dataDir, 'none.env'),
    BACKUPS_DATA_DIR: dataDir,
    BACKUPS_CUSTOMER_DB_DEFAULTS_FILE: cnf,
    BACKUPS_RESTIC_RETRY_LOCK: '10s',
    BACKUPS_SITE_STOP_COMMAND: 'echo stop >> "$SITE_DIR/../site-$CUSTOMER_ID.log"',
    BACKUPS_SITE_START_COMMAND:
      'if [ -e .maintenance ]; then m=maintenance; else m=open; fi; echo "start $m" >> "$SITE_DIR/../site-$CUSTOMER_ID.log"',
    ...extra,
  };
  const t: TestEnv = {
    dataDir,
    customersRoot,
    env,
    logFile: (id) => path.join(customersRoot, `site-${id}.log`),
  };
  for (const kind of ['manual', 'daily']) {
    const r = await run(t, 'backup-repository', [kind, 'init']);
    if (r.exitCode !== 0) throw new Error(`init ${kind} failed: ${r.stderr}`);
  }
  return t;
}

export async function destroyTestEnv(t: TestEnv | undefined): Promise<void> {
  if (t) await rm(t.dataDir, { recursive: true, force: true });
}

export function parseEvents(stdout: string): Event[] {
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Event);
}

export interface RunResult {
  exitCode: number;
  events: Event[];
  stdout: string;
  stderr: string;
}

export async function run(
  t: TestEnv,
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<RunResult> {
  const r = await execa(script(name), args, {
    env: { ...t.env, ...env },
    extendEnv: false,
    reject: false,
  });
  return {
    exitCode: r.exitCode ?? -1,
    events: parseEvents(r.stdout),
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

/** Starts a script in its own process group; events are collected live. */
export function start(t: TestEnv, name: string, args: string[], env: Record<string, string> = {}) {
  const proc: ResultPromise = execa(script(name), args, {
    env: { ...t.env, ...env },
    extendEnv: false,
    reject: false,
    detached: true,
    buffer: false,
    forceKillAfterDelay: false,
  });
  const events: Event[] = [];
  let pending = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let i = pending.indexOf('\n');
    while (i >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      if (line) events.push(JSON.parse(line) as Event);
      i = pending.indexOf('\n');
    }
  });
  proc.stderr?.resume();
  const waitFor = async (pred: (e: Event) => boolean, timeoutMs = 60_000): Promise<boolean> => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (events.some(pred)) return true;
      if (proc.exitCode !== null && proc.exitCode !== undefined) return events.some(pred);
      await sleep(10);
    }
    return false;
  };
  return { proc, events, waitFor };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const snapshotEvent = (events: Event[], kind = 'result') =>
  events.find((e) => e.type === 'snapshot' && e.kind === kind) as
    | (Event & { id: string; tags: string[]; paths: string[] })
    | undefined;
export const phases = (events: Event[]) =>
  events.filter((e) => e.type === 'phase').map((e) => e.phase);
export const errorCode = (events: Event[]) => events.find((e) => e.type === 'error')?.code;

// --- database ---------------------------------------------------------------

export async function sql(statement: string): Promise<string> {
  const r = await execa('mariadb', ['-uroot', '-N', '-B', '-e', statement]);
  return r.stdout;
}

/** The site's own database account, as a hosting company gives one: rights on its database alone. */
export const siteAccount = (id: number) => `'site_${id}'@'localhost'`;

export async function createCustomerDatabase(id: number): Promise<void> {
  const db = `customer_${id}`;
  await sql(`DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db} CHARACTER SET utf8mb4;
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

/** The customer's databases and every account made for them (the site's, and the restore's). */
export async function dropCustomerDatabases(id: number): Promise<void> {
  await sql(
    `DROP DATABASE IF EXISTS customer_${id}; DROP DATABASE IF EXISTS customer_${id}__restore; DROP DATABASE IF EXISTS customer_${id}__previous;
     DROP USER IF EXISTS ${siteAccount(id)}, 'backups_definer_${id}'@'localhost', 'backups_restore_${id}'@'localhost';`,
  );
}

/** The database, schema and rows, as a deterministic text. */
export async function dbManifest(id: number): Promise<string> {
  const r = await execa('mysqldump', [
    '-uroot',
    '--compact',
    '--skip-dump-date',
    '--hex-blob',
    '--routines',
    '--triggers',
    '--events',
    '--skip-extended-insert',
    `customer_${id}`,
  ]);
  return r.stdout;
}

// --- files ------------------------------------------------------------------

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

/** Every entry below dir: type, mode, mtime, size, content hash. */
export async function filesManifest(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string) {
    const full = path.join(dir, rel);
    const st = await lstat(full);
    let hash = '';
    if (st.isFile())
      hash = createHash('sha256')
        .update(await readFile(full))
        .digest('hex');
    const kind = st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'o';
    // Directory mtimes are compared too, except the root's (its parent rename may touch it).
    out.push(
      `${rel || '.'} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.size} ${kind === 'd' && !rel ? '' : st.mtimeMs} ${hash}`,
    );
    if (st.isDirectory())
      for (const e of (await readdir(full)).sort()) await walk(path.join(rel, e));
  }
  await walk('');
  return out;
}

export async function siteManifest(site: string, content = 'wordpress'): Promise<string[]> {
  return filesManifest(path.join(site, content));
}

export async function readLog(t: TestEnv, id: number): Promise<string[]> {
  try {
    return (await readFile(t.logFile(id), 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Snapshots of a repository, via the executor (NDJSON entries). */
export async function listSnapshots(t: TestEnv, kind: string, env: Record<string, string> = {}) {
  const r = await run(t, 'backup-repository', [kind, 'snapshots'], env);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return r.events as (Event & { id: string; tags: string[]; paths: string[]; time: string })[];
}
