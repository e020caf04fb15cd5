// The bench's own world: a throw-away application database (backups_bench_<random>), a temp
// data dir with its own restic repositories, its own Redis prefix, the api in a child process
// (so its resident memory can be read from /proc) and a worker in this process. Everything
// created here is removed by cleanup(), also after a failure or Ctrl-C.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import pino from 'pino';
import { Pool } from 'undici';
import { CSRF_HEADER } from '../../server/src/api/yoga.js';
import { type Config, parseConfig } from '../../server/src/config/config.js';
import type { ICustomer } from '../../server/src/customers/customer.entity.js';
import { createRedis } from '../../server/src/infra/redis.js';
import { BackupJob, type IBackupJob } from '../../server/src/jobs/job.entity.js';
import { startWorker, type WorkerHandle } from '../../server/src/worker/worker.js';
import { adminToken, buildCustomer, customerToken } from '../../server/test/support/factories.js';
import { ACCEL_PREFIX } from '../../server/test/support/loopback-nginx.js';
import {
  CUSTOMER_IDS,
  clearRedisPrefix,
  createDataDir,
  createTestDatabase,
  dropCustomerDatabases,
  freePort,
  initRepositories,
  redisPrefix,
  removeDataDir,
  repositoryEnv,
  SCRIPTS_DIR,
  sql,
  type TestDatabase,
} from '../../server/test/support/sandbox.js';
import { sleep } from './stats.js';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROJECT_DIR = path.resolve(BENCH_DIR, '..');
export const WORKER_NODE = 'bench';

export type Orm = TestDatabase['orm'];
export type RedisClient = ReturnType<typeof createRedis>;

export interface MaintenanceEvent {
  jobId: number;
  on: boolean;
  at: number;
}

export interface GqlResult {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: results are read by path
  data: Record<string, any> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export interface ApiProcess {
  url: string;
  wsUrl: string;
  origin: string;
  /** The child process (with several api processes: the cluster's primary). */
  pid: number;
  pool: Pool;
  /** built: node on tsc's JavaScript (as in production); tsx: the TypeScript through tsx. */
  runner: 'built' | 'tsx';
  /** BACKUPS_API_PROCESSES of this api. */
  processes: number;
  /** The child and the api processes it runs (for their CPU time). */
  pids(): Promise<number[]>;
  /** Stops it before the end of the run (otherwise cleanup does). */
  stop(): Promise<void>;
}

export interface BenchWorld {
  dbName: string;
  prefix: string;
  dataDir: string;
  customersRoot: string;
  scriptEnv: Record<string, string>;
  orm: Orm;
  redis: RedisClient;
  redisUrl: string;
  api: ApiProcess;
  /**
   * Another api on the same database and Redis prefix (e.g. BACKUPS_API_PROCESSES=2);
   * `entry`: another build's main/api.js (an A/B of two builds, BENCH_API_BASELINE).
   */
  startApi(extraEnv: Record<string, string>, entry?: string): Promise<ApiProcess>;
  adminToken: string;
  worker: WorkerHandle;
  /**
   * A worker of its own node in a child process, as deploy/systemd runs one (the worker above
   * shares this process's event loop and heap with the bench itself); stopped at cleanup.
   */
  startWorkerProcess(node: string): Promise<{ pid: number; stop(): Promise<void> }>;
  maintenance: MaintenanceEvent[];
  /** A statement for the MariaDB server as root (the customer databases). */
  sql(statement: string): Promise<string>;
  gql(query: string, variables: Record<string, unknown>, token: string): Promise<GqlResult>;
  /** A customer on the worker's node; `withDatabase` creates customer_<id> (tracked). */
  customer(options?: { host?: string }): Promise<ICustomer>;
  customerToken(customerId: number): Promise<string>;
  trackCustomerDatabase(customerId: number): void;
  /** Runs a script of scripts/ with the worker's environment. */
  script(
    name: string,
    args: string[],
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  job(id: number): Promise<IBackupJob>;
  waitForJobs(ids: number[], timeoutMs: number): Promise<IBackupJob[]>;
  resticEnv(repository: string): Record<string, string>;
  /** Resident memory of the api (all its processes), in KiB. */
  rssKb(): Promise<{ rss: number; hwm: number }>;
  onCleanup(step: () => Promise<unknown>): void;
  cleanup(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// Every step that undoes something the bench created, run in reverse order by cleanupAll();
// module-level so a signal during the world's creation still reaches them.
const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;
let cleanupLog: (line: string) => void = () => undefined;

function onCleanup(step: () => Promise<unknown>): void {
  cleanups.push(step);
}

/** Idempotent: a second call (signal handler and main's finally) waits for the same run. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const step = cleanups.pop() as () => Promise<unknown>;
      try {
        await step();
      } catch (error) {
        cleanupLog(
          `cleanup step failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  })();
  return cleaning;
}

export async function createBenchWorld(log: (line: string) => void): Promise<BenchWorld> {
  cleanupLog = log;
  const cleanup = cleanupAll;
  try {
    const random = randomBytes(5).toString('hex');

    // --- data dir, repositories, secrets
    const data = await createDataDir({ tmpPrefix: 'backups-bench-' });
    onCleanup(() => removeDataDir(data));
    const { dataDir, customersRoot } = data;
    const siteLog = path.join(dataDir, 'site-commands.log');
    const scriptEnv: Record<string, string> = {
      ...data.env,
      BACKUPS_SITE_STOP_COMMAND: `echo "stop $CUSTOMER_ID $(date +%s%3N)" >> ${siteLog}`,
      BACKUPS_SITE_START_COMMAND: `echo "start $CUSTOMER_ID $(date +%s%3N)" >> ${siteLog}`,
      // archives nginx sends itself (measurement 10): its workers' group (nobody:nogroup)
      BACKUPS_DOWNLOAD_GROUP: 'nogroup',
    };
    const script = async (name: string, args: string[]) => {
      const r = await execa(path.join(SCRIPTS_DIR, name), args, {
        env: scriptEnv,
        extendEnv: true,
        reject: false,
      });
      return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    await initRepositories(scriptEnv);

    // --- application database (customer ids far from the tests' ranges)
    const base = parseConfig({ BACKUPS_ENV_FILE: scriptEnv.BACKUPS_ENV_FILE });
    const db = await createTestDatabase({
      prefix: 'backups_bench',
      customerIds: CUSTOMER_IDS.bench,
      poolMax: 20,
    });
    onCleanup(() => db.drop());
    const { orm, name: dbName } = db;

    // --- Redis: our prefix only (never FLUSHALL)
    const prefix = redisPrefix('bench');
    const redis = createRedis(base.BACKUPS_REDIS_URL, 'bench');
    onCleanup(async () => {
      await clearRedisPrefix(prefix, redis);
      await redis.quit();
    });

    // --- customer databases, dropped at the end
    const customerDatabases = new Set<number>();
    onCleanup(() => dropCustomerDatabases([...customerDatabases]));

    // --- the api, in a child process
    // As in production (deploy/systemd): node on the JavaScript tsc builds, compiled here into
    // server/dist/bench-<random>/ (inside server/ so its node_modules resolve; removed at the
    // end). tsx would compile every module at start and keep the sources and source maps,
    // ~40 MB more resident memory. BENCH_API_RUNNER=tsx runs the TypeScript through tsx instead;
    // BENCH_API_NODE_ARGS adds node flags, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
    const runner = process.env.BENCH_API_RUNNER === 'tsx' ? 'tsx' : 'built';
    let entry = path.join(PROJECT_DIR, 'server/src/main/api.ts');
    const nodeArgs = (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean);
    if (runner === 'built') {
      const buildDir = path.join(PROJECT_DIR, 'server', 'dist', `bench-${random}`);
      onCleanup(() => rm(buildDir, { recursive: true, force: true }));
      const started = Date.now();
      await execa(
        path.join(PROJECT_DIR, 'server/node_modules/.bin/tsc'),
        ['-p', 'tsconfig.build.json', '--outDir', buildDir, '--sourceMap', 'false'],
        { cwd: path.join(PROJECT_DIR, 'server') },
      );
      log(`api built with tsc in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      entry = path.join(buildDir, 'server/src/main/api.js');
    } else {
      nodeArgs.push('--import', 'tsx');
    }

    /**
     * A node process of ours (the api, a worker) on `entry`, its output in the bench's log,
     * ready once `readyUrl` answers 200 (within 30 s); stopped at cleanup, or by `stop`.
     */
    const startService = async (
      name: string,
      serviceEntry: string,
      env: Record<string, string>,
      readyUrl: string,
    ): Promise<{ child: ChildProcess; stop(): Promise<void> }> => {
      const child = spawn(process.execPath, [...nodeArgs, serviceEntry], {
        cwd: BENCH_DIR,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stopping = false;
      child.once('exit', (code, signal) => {
        if (!stopping) log(`${name} (pid ${child.pid}) exited: code ${code}, signal ${signal}`);
      });
      const stop = () => {
        stopping = true;
        return stopChild(child);
      };
      onCleanup(stop);
      child.stdout?.on('data', (chunk: Buffer) => log(`${name}: ${chunk.toString().trim()}`));
      child.stderr?.on('data', (chunk: Buffer) => log(`${name}: ${chunk.toString().trim()}`));
      for (let i = 0; ; i++) {
        if (child.exitCode !== null) throw new Error(`${name} exited on start`);
        const ok = await fetch(readyUrl).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) break;
        if (i > 300) throw new Error(`${name} did not become ready in 30 s`);
        await sleep(100);
      }
      return { child, stop };
    };

    const workerEntry = path.join(
      path.dirname(entry),
      runner === 'built' ? 'worker.js' : 'worker.ts',
    );
    const startWorkerProcess = async (node: string) => {
      const port = await freePort();
      const { child, stop } = await startService(
        `the worker of ${node}`,
        workerEntry,
        {
          ...(process.env as Record<string, string>),
          ...scriptEnv,
          BACKUPS_DB_NAME: dbName,
          BACKUPS_REDIS_PREFIX: prefix,
          BACKUPS_NODE: node,
          BACKUPS_WORKER_HOST: '127.0.0.1',
          BACKUPS_WORKER_PORT: String(port),
          BACKUPS_DOWNLOAD_PORT: '0',
          BACKUPS_WORKER_CONCURRENCY: '2',
          BACKUPS_DAILY_ENABLED: 'false',
          BACKUPS_INDEX_NEW_BACKUPS: 'false',
          BACKUPS_SHUTDOWN_GRACE_SECONDS: '5',
          BACKUPS_LOG_LEVEL: 'warn',
        },
        `http://127.0.0.1:${port}/readyz`,
      );
      return { pid: child.pid ?? 0, stop };
    };

    const startApi = async (
      extraEnv: Record<string, string>,
      otherEntry?: string,
    ): Promise<ApiProcess> => {
      const port = await freePort();
      const apiEnv: Record<string, string> = {
        ...(process.env as Record<string, string>),
        BACKUPS_ENV_FILE: scriptEnv.BACKUPS_ENV_FILE ?? '',
        BACKUPS_DATA_DIR: dataDir,
        BACKUPS_DB_NAME: dbName,
        BACKUPS_REDIS_PREFIX: prefix,
        BACKUPS_API_HOST: '127.0.0.1',
        BACKUPS_API_PORT: String(port),
        BACKUPS_PUBLIC_URL: `http://127.0.0.1:${port}`,
        BACKUPS_WEB_DIR: '/nonexistent',
        BACKUPS_LOG_LEVEL: 'warn',
        // The progress measurement's 1,000 subscribers come from one address with one token.
        BACKUPS_API_MAX_SOCKETS_PER_ADDRESS: '5000',
        BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER: '5000',
        ...extraEnv,
      };
      const { child, stop } = await startService(
        'the api',
        otherEntry ?? entry,
        apiEnv,
        `http://127.0.0.1:${port}/readyz`,
      );
      const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, pipelining: 1 });
      let poolClosed = false;
      const closePool = async () => {
        if (poolClosed) return;
        poolClosed = true;
        await pool.close();
      };
      onCleanup(closePool);
      const pid = child.pid ?? 0;
      return {
        url: `http://127.0.0.1:${port}/graphql`,
        wsUrl: `ws://127.0.0.1:${port}/graphql`,
        origin: `http://127.0.0.1:${port}`,
        pid,
        pool,
        runner,
        processes: Number(extraEnv.BACKUPS_API_PROCESSES ?? process.env.BACKUPS_API_PROCESSES ?? 1),
        async pids() {
          // With BACKUPS_API_PROCESSES > 1 the child is the cluster's primary; its children
          // serve (the same count as test/api/processes.test.ts makes).
          const r = await execa('pgrep', ['-P', String(pid), '-f', 'main/api'], { reject: false });
          const children = r.stdout.split('\n').filter(Boolean).map(Number);
          return [pid, ...children];
        },
        async stop() {
          await closePool();
          await stop();
        },
      };
    };
    const api = await startApi({});
    const { pool } = api;

    const gql = async (query: string, variables: Record<string, unknown>, token: string) => {
      const response = await pool.request({
        path: '/graphql',
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          [CSRF_HEADER]: '1',
        },
        body: JSON.stringify({ query, variables }),
      });
      const text = await response.body.text();
      let body: Omit<GqlResult, 'status'> = { data: null };
      try {
        body = JSON.parse(text) as Omit<GqlResult, 'status'>;
      } catch {
        body = { data: null, errors: [{ message: text }] };
      }
      return { status: response.statusCode, data: body.data ?? null, errors: body.errors };
    };

    // --- the worker, in this process; its log feeds the maintenance events
    const maintenance: MaintenanceEvent[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) {
          if (!line.trim()) continue;
          try {
            const entry = JSON.parse(line) as Record<string, unknown>;
            if (entry.msg === 'maintenance') {
              maintenance.push({
                jobId: Number(entry.jobId),
                on: entry.on === true,
                at: Number(entry.at),
              });
            } else if (Number(entry.level) >= 40) {
              // a failed job's script stderr (its tail) says why
              const detail = entry.err ?? entry.line ?? entry.stderr ?? '';
              log(
                `worker: ${String(entry.msg)} ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`,
              );
            }
          } catch {
            // not JSON: ignore
          }
        }
        done();
      },
    });
    const workerConfig: Config = parseConfig({
      ...scriptEnv,
      BACKUPS_DB_NAME: dbName,
      BACKUPS_REDIS_PREFIX: prefix,
      BACKUPS_NODE: WORKER_NODE,
      BACKUPS_WORKER_PORT: '0',
      BACKUPS_DOWNLOAD_PORT: '0',
      // the shipped local node: the worker checks a link, nginx sends the file
      BACKUPS_DOWNLOAD_ACCEL_PREFIX: ACCEL_PREFIX,
      BACKUPS_WORKER_CONCURRENCY: '2',
      BACKUPS_DAILY_ENABLED: 'false',
      // the backups measured alone; indexing has its own measurement
      BACKUPS_INDEX_NEW_BACKUPS: 'false',
      BACKUPS_SHUTDOWN_GRACE_SECONDS: '5',
      BACKUPS_LOG_LEVEL: 'info',
    });
    const worker = await startWorker({
      config: workerConfig,
      scriptEnv,
      logger: pino({ level: 'info' }, logStream),
      syncOnStart: false,
    });
    onCleanup(() => worker.stop());

    const admin = await adminToken(orm.em, 'bench admin');

    const world: BenchWorld = {
      dbName,
      prefix,
      dataDir,
      customersRoot,
      scriptEnv,
      orm,
      redis,
      redisUrl: base.BACKUPS_REDIS_URL,
      api,
      startApi,
      adminToken: admin,
      worker,
      startWorkerProcess,
      maintenance,
      sql,
      gql,
      customer: (options = {}) => buildCustomer(orm.em, { host: options.host ?? WORKER_NODE }),
      customerToken: (customerId) => customerToken(orm.em, { id: customerId }, 'bench'),
      trackCustomerDatabase(customerId) {
        customerDatabases.add(customerId);
      },
      script,
      job: (id) => orm.em.fork().findOneOrFail(BackupJob, id),
      async waitForJobs(ids, timeoutMs) {
        const until = Date.now() + timeoutMs;
        const terminal = new Set(['completed', 'failed', 'cancelled']);
        for (;;) {
          const jobs = ids.length ? await orm.em.fork().find(BackupJob, { id: { $in: ids } }) : [];
          if (jobs.length === ids.length && jobs.every((j) => terminal.has(String(j.status)))) {
            return jobs;
          }
          if (Date.now() > until) return jobs;
          await sleep(50);
        }
      },
      resticEnv(repository) {
        return {
          ...repositoryEnv(dataDir, 'manual'),
          RESTIC_REPOSITORY: repository,
          RESTIC_PROGRESS_FPS: '4',
        };
      },
      async rssKb() {
        // Every api process: the child, and with BACKUPS_API_PROCESSES > 1 the ones it runs
        // (the high-water marks are each process's own, summed: an upper bound).
        const totals = { rss: 0, hwm: 0 };
        for (const pid of await api.pids()) {
          const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
          const field = (name: string) =>
            Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
          totals.rss += field('VmRSS');
          totals.hwm += field('VmHWM');
        }
        return totals;
      },
      onCleanup,
      cleanup,
    };
    return world;
  } catch (error) {
    await cleanup();
    throw error;
  }
}
