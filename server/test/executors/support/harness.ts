// Test harness for the bash executors: a private data dir, repositories,
// customer sites and databases per test file, and helpers to run the scripts
// with an explicit environment (nothing BACKUPS_* inherited from the parent).
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { LISTING_END } from '../../../src/executors/script-events.js';
import {
  entryBelow,
  type IndexEntry,
  isBelow,
  parseListingLine,
} from '../../../src/snapshots/snapshot-index.js';
import {
  createDataDir,
  type DataDir,
  initRepositories,
  removeDataDir,
  script,
} from '../../support/sandbox.js';

// The sandbox's parts the executors' tests use by name.
export {
  buildSite,
  createCustomerDatabase,
  dropCustomerDatabases,
  randomCustomerId,
  SCRIPTS_DIR,
  script,
  siteAccount,
  sql,
} from '../../support/sandbox.js';

export type Event = { type: string; [k: string]: unknown };

export interface TestEnv extends DataDir {
  logFile: (id: number) => string;
}

/** A data dir with its own repositories; stop/start commands leave markers. */
export async function createTestEnv(
  extra: Record<string, string> = {},
  options: { dir?: string } = {},
): Promise<TestEnv> {
  const dir = await createDataDir({ tmpPrefix: 'executors-', dir: options.dir });
  const t: TestEnv = {
    ...dir,
    env: {
      ...dir.env,
      HOME: dir.dataDir,
      BACKUPS_RESTIC_RETRY_LOCK: '10s',
      BACKUPS_SITE_STOP_COMMAND: 'echo stop >> "$SITE_DIR/../site-$CUSTOMER_ID.log"',
      BACKUPS_SITE_START_COMMAND:
        'if [ -e .maintenance ]; then m=maintenance; else m=open; fi; echo "start $m" >> "$SITE_DIR/../site-$CUSTOMER_ID.log"',
      ...extra,
    },
    logFile: (id) => path.join(dir.customersRoot, `site-${id}.log`),
  };
  await initRepositories(t.env);
  return t;
}

export async function destroyTestEnv(t: TestEnv | undefined): Promise<void> {
  await removeDataDir(t);
}

/** Events about the run itself (how restic ended, lock waits): the worker's metrics read them. */
const RUN_EVENTS = new Set(['restic', 'lock_wait']);

/**
 * The job's events (phases, progress, snapshots, errors...), without the run's own and without
 * the lines of a listing passed through (listedEntries reads them).
 */
export function parseEvents(stdout: string): Event[] {
  const kept: string[] = [];
  let listing = false;
  for (const line of stdout.split('\n')) {
    if (line === LISTING_END) listing = false;
    else if (!listing || line.startsWith('{"type":"')) kept.push(line);
    if (line.startsWith('{"type":"listing",')) listing = true;
  }
  return parseAllEvents(kept.join('\n')).filter((e) => !RUN_EVENTS.has(String(e.type)));
}

/**
 * What customer-index's output gives the worker to store: the listed nodes below the root the
 * index event names, relative to it, read as the worker reads them. A listed line that is not
 * a node below one of the listing event's roots fails the test (the script passes on nothing
 * else).
 */
export function listedEntries(stdout: string): IndexEntry[] {
  const lines = stdout.split('\n');
  const from = lines.findIndex((l) => l.startsWith('{"type":"listing",'));
  const to = lines.indexOf(LISTING_END);
  const index = lines.find((l) => l.startsWith('{"type":"index",'));
  if (from < 0 || to < from || !index) throw new Error('no listing in the output');
  const roots = (JSON.parse(lines[from] ?? '{}') as { roots: string[] }).roots;
  const root = String((JSON.parse(index) as { root: string }).root);
  const entries: IndexEntry[] = [];
  for (const line of lines.slice(from + 1, to)) {
    if (line.startsWith('{"type":"')) continue;
    const node = parseListingLine(line);
    if (!node || !roots.some((r) => isBelow(node, r))) {
      throw new Error(`a listed line that is no node below a root: ${line.slice(0, 200)}`);
    }
    const entry = entryBelow(node, root);
    if (entry) entries.push(entry);
  }
  return entries;
}

export function parseAllEvents(stdout: string): Event[] {
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
      const event = line ? (JSON.parse(line) as Event) : null;
      if (event && !RUN_EVENTS.has(String(event.type))) events.push(event);
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
