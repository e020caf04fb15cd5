// The chaos run's throw-away system, built from services.ts and the test helpers: a data
// folder with its staging tmpfs, its own MariaDB and Redis, the manual repository on
// rest-server (TLS, htpasswd) and the daily one over sftp (sshd), the application database
// (migrated), N customers with small sites and real databases, nginx in front of the sites,
// and the api and the worker as child processes. cleanup() undoes all of it.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MikroORM } from '@mikro-orm/mariadb';
import { execa } from 'execa';
import { CSRF_HEADER } from '../../server/src/api/yoga.js';
import { parseConfig } from '../../server/src/config/config.js';
import { ormOptions } from '../../server/src/db/orm.js';
import { createLogger } from '../../server/src/infra/logger.js';
import { createRedis } from '../../server/src/infra/redis.js';
import { QueueRegistry } from '../../server/src/jobs/job-queue.js';
import { JobStore } from '../../server/src/jobs/job-store.js';
import { deliveryQueues } from '../../server/src/webhooks/webhook-queue.js';
import { enqueueDailyBackups } from '../../server/src/worker/daily-schedule.js';
import { buildCustomer, customerToken } from '../../server/test/support/factories.js';
import {
  nginxMainConfig,
  runNginx,
  writeCustomerSite,
} from '../../server/test/support/loopback-nginx.js';
import {
  createCertificateAuthority,
  type RestServer,
  type SftpServer,
  startRestServer,
  startSftpServer,
} from '../../server/test/support/repository-servers.js';
import {
  buildSite,
  createCustomerDatabase,
  createDataDir,
  freePort,
  initRepositories,
} from '../../server/test/support/sandbox.js';
import {
  Child,
  type Log,
  type MariaDb,
  mountStaging,
  startMariaDb,
  startRedis,
} from './services.js';

export const CHAOS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROJECT_DIR = path.resolve(CHAOS_DIR, '..');
export const NODE = 'chaos';

export interface Site {
  id: number;
  dir: string;
  token: string;
  nginxPort: number;
}

export interface MaintenanceEvent {
  jobId: number;
  on: boolean;
  at: number;
}

export interface GqlResult {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: results are read by path
  data: Record<string, any> | null;
  errors?: { message: string }[];
}

export type Orm = MikroORM;

const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;

export function cleanupAll(log: Log): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const step = cleanups.pop() as () => Promise<unknown>;
      await step().catch((error: unknown) =>
        log(`cleanup step failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
  })();
  return cleaning;
}

export type World = Awaited<ReturnType<typeof createWorld>>;

export async function createWorld(options: { customers: number; log: Log; stagingMb: number }) {
  const { log } = options;
  const root = await mkdtemp(path.join(tmpdir(), 'backups-chaos-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  // nginx (user nobody) has to stat the sites' .maintenance flags
  await chmod(root, 0o711);
  const data = await createDataDir({ dir: path.join(root, 'data') });
  await mkdir(data.dataDir, { recursive: true });
  await chmod(data.dataDir, 0o711);
  await chmod(data.customersRoot, 0o711);

  // --- staging: the scripts' work folder and the download folder, on a small tmpfs
  const staging = await mountStaging(path.join(data.dataDir, 'work'), options.stagingMb);
  cleanups.push(() => staging.unmount());
  const downloadDir = path.join(staging.dir, 'downloads');

  // --- MariaDB and Redis of our own
  const db: MariaDb = await startMariaDb(path.join(root, 'mariadb'));
  cleanups.push(() => db.child.stop('SIGKILL'));
  log(`mariadbd on ${db.port} (${db.socket})`);
  await writeFile(data.customerDbDefaultsFile, `[client]\nuser=root\nsocket=${db.socket}\n`, {
    mode: 0o600,
  });
  const redisServer = await startRedis(path.join(root, 'redis'));
  cleanups.push(() => redisServer.child.stop('SIGKILL'));
  log(`redis-server on ${redisServer.port}`);

  // --- repositories: manual on rest-server, daily over sftp
  const hostDir = path.join(root, 'repository-host');
  const ca = await createCertificateAuthority(path.join(hostDir, 'tls'));
  const restUser = 'node-chaos';
  const restPassword = randomBytes(12).toString('hex');
  const rest: RestServer = await startRestServer({
    dir: hostDir,
    dataPath: path.join(hostDir, 'rest-data'),
    ca,
    accounts: { [restUser]: restPassword },
    privateRepos: true,
  });
  cleanups.push(() => rest.stop('SIGKILL'));
  const sftp: SftpServer = await startSftpServer(path.join(hostDir, 'ssh'));
  cleanups.push(() => sftp.stop('SIGKILL'));
  const sftpStore = path.join(hostDir, 'srv');
  await mkdir(sftpStore, { recursive: true, mode: 0o700 });
  const siteLog = path.join(root, 'site-commands.log');
  const scriptEnv: Record<string, string> = {
    ...data.env,
    BACKUPS_MANUAL_REPOSITORY: rest.location(`${restUser}/manual`),
    BACKUPS_DAILY_REPOSITORY: sftp.location(path.join(sftpStore, 'daily')),
    BACKUPS_SSH_CONFIG: sftp.sshConfig,
    RESTIC_REST_USERNAME: restUser,
    RESTIC_REST_PASSWORD: restPassword,
    RESTIC_CACERT: ca.caCert,
    BACKUPS_DOWNLOAD_DIR: downloadDir,
    BACKUPS_SPACE_MARGIN_MB: '4',
    BACKUPS_SITE_STOP_COMMAND: `echo "stop $CUSTOMER_ID" >> ${siteLog}`,
    BACKUPS_SITE_START_COMMAND: `echo "start $CUSTOMER_ID" >> ${siteLog}`,
  };
  await initRepositories(scriptEnv);
  const resticFor = (kind: 'manual' | 'daily') => ({
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      RESTIC_REPOSITORY: scriptEnv[`BACKUPS_${kind.toUpperCase()}_REPOSITORY`] ?? '',
      RESTIC_PASSWORD_FILE: path.join(data.dataDir, 'secrets', `${kind}-repository.pass`),
      RESTIC_CACHE_DIR: path.join(root, 'restic-cache-chaos'),
      RESTIC_REST_USERNAME: restUser,
      RESTIC_REST_PASSWORD: restPassword,
      RESTIC_CACERT: ca.caCert,
    },
    args: kind === 'daily' ? ['-o', `sftp.args=-F ${sftp.sshConfig} -o BatchMode=yes`] : [],
  });

  // --- the application database
  const dbName = `backups_chaos_${randomBytes(4).toString('hex')}`;
  await db.sql(`create database ${dbName} character set utf8mb4 collate utf8mb4_unicode_ci`);
  const baseConfig = {
    BACKUPS_ENV_FILE: scriptEnv.BACKUPS_ENV_FILE ?? '',
    BACKUPS_DB_HOST: '127.0.0.1',
    BACKUPS_DB_PORT: String(db.port),
    BACKUPS_DB_NAME: dbName,
    BACKUPS_REDIS_URL: redisServer.url,
    BACKUPS_REDIS_PREFIX: 'chaos',
  };
  const cfg = parseConfig(baseConfig);
  const orm = await MikroORM.init({
    ...ormOptions({ ...cfg, poolMax: 10 }),
    ensureDatabase: false,
  });
  cleanups.push(() => orm.close(true));
  await orm.migrator.up();
  await db.sql(`alter table \`${dbName}\`.customers auto_increment = 4100`);

  // --- jobs the chaos run makes itself (the daily backups: the schedule's, not the api's)
  const redis = createRedis(redisServer.url, 'chaos');
  // Redis is stopped on purpose: its client reconnects by itself
  redis.on('error', () => undefined);
  cleanups.push(async () => redis.disconnect());
  const queues = new QueueRegistry({ redisUrl: redisServer.url, prefix: 'chaos' });
  cleanups.push(() => Promise.race([queues.close(), new Promise((r) => setTimeout(r, 3000))]));
  const deliveries = deliveryQueues({ redisUrl: redisServer.url, prefix: 'chaos' });
  cleanups.push(() => Promise.race([deliveries.close(), new Promise((r) => setTimeout(r, 3000))]));
  const store = new JobStore({ orm, redis, prefix: 'chaos', queues, deliveries });
  const quietLogger = createLogger('chaos', 'silent');
  const daily = (customerId: number) =>
    enqueueDailyBackups({ orm, redis, prefix: 'chaos', node: NODE, store, logger: quietLogger }, [
      customerId,
    ]);

  // --- customers, sites and databases
  const sites: Site[] = [];
  for (let i = 0; i < options.customers; i++) {
    const customer = await buildCustomer(orm.em, { host: NODE });
    const dir = await buildSite(data.customersRoot, customer.id, 'wordpress', `seed-${i}`);
    await chmod(dir, 0o711);
    // a few MB of incompressible media, different per site
    const media = path.join(dir, 'wordpress', 'uploads');
    await mkdir(media, { recursive: true });
    for (let m = 0; m < 3; m++) {
      await writeFile(path.join(media, `photo-${m}.jpg`), randomBytes(512 * 1024 + m * 4096));
    }
    await createCustomerDatabase(customer.id, (s) => db.sql(s));
    await db.sql(
      `INSERT INTO customer_${customer.id}.posts (title, body) SELECT CONCAT('Post ', seq), REPEAT(MD5(seq), 40) FROM seq_1_to_400`,
      `customer_${customer.id}`,
    );
    const token = await customerToken(orm.em, { id: customer.id }, 'chaos');
    sites.push({ id: customer.id, dir, token, nginxPort: 0 });
  }
  log(`${sites.length} customers with sites and databases`);

  // --- nginx in front of the sites (the shipped maintenance snippet), upstream: a tiny server
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('site ok\n');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(() => new Promise((resolve) => upstream.close(() => resolve(undefined))));
  const upstreamPort = (upstream.address() as { port: number }).port;
  const nginxPrefix = path.join(root, 'nginx');
  await mkdir(path.join(nginxPrefix, 'tmp'), { recursive: true });
  const siteFiles: string[] = [];
  for (const site of sites) {
    site.nginxPort = await freePort();
    const prefix = path.join(nginxPrefix, `site-${site.id}`);
    await mkdir(prefix, { recursive: true });
    siteFiles.push(
      await writeCustomerSite(prefix, { port: site.nginxPort, siteDir: site.dir, upstreamPort }),
    );
  }
  const nginxConf = path.join(nginxPrefix, 'nginx.conf');
  await writeFile(nginxConf, nginxMainConfig(nginxPrefix, siteFiles));
  const nginx = await runNginx(nginxPrefix, nginxConf, sites[0]?.nginxPort ?? 0);
  cleanups.push(() => nginx.stop());

  // --- the api and the worker: tsc's JavaScript in server/dist/chaos-<random>/
  const buildDir = path.join(
    PROJECT_DIR,
    'server',
    'dist',
    `chaos-${randomBytes(4).toString('hex')}`,
  );
  cleanups.push(() => rm(buildDir, { recursive: true, force: true }));
  const t0 = Date.now();
  await execa(
    path.join(PROJECT_DIR, 'server/node_modules/.bin/tsc'),
    ['-p', 'tsconfig.build.json', '--outDir', buildDir, '--sourceMap', 'false'],
    { cwd: path.join(PROJECT_DIR, 'server') },
  );
  log(`server built with tsc in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const apiPort = await freePort();
  const workerPort = await freePort();
  const downloadPort = await freePort();
  const processEnv: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...scriptEnv,
    ...baseConfig,
    BACKUPS_NODE: NODE,
    BACKUPS_LOG_LEVEL: 'info',
    BACKUPS_API_HOST: '127.0.0.1',
    BACKUPS_API_PORT: String(apiPort),
    BACKUPS_PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
    BACKUPS_WEB_DIR: '/nonexistent',
    BACKUPS_JOB_LIMIT_PER_CUSTOMER: '1000',
    BACKUPS_WORKER_HOST: '127.0.0.1',
    BACKUPS_WORKER_PORT: String(workerPort),
    BACKUPS_DOWNLOAD_HOST: '127.0.0.1',
    BACKUPS_DOWNLOAD_PORT: String(downloadPort),
    BACKUPS_DOWNLOAD_PUBLIC_URL: `http://127.0.0.1:${downloadPort}`,
    BACKUPS_WORKER_CONCURRENCY: '2',
    BACKUPS_DAILY_ENABLED: 'false',
    BACKUPS_SHUTDOWN_GRACE_SECONDS: '5',
    BACKUPS_HEARTBEAT_SECONDS: '5',
    BACKUPS_STALE_AFTER_SECONDS: '30',
    // a drill the customer's own backup or restore stopped runs again soon, not in 10 minutes
    BACKUPS_VERIFY_RETRY_SECONDS: '15',
  };
  const ok = (url: string) => async () =>
    (await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.ok === true;
  const api = new Child('api', process.execPath, [path.join(buildDir, 'server/src/main/api.js')], {
    env: processEnv,
    cwd: CHAOS_DIR,
    port: apiPort,
    startTimeoutMs: 120_000,
  });
  const worker = new Child(
    'worker',
    process.execPath,
    [path.join(buildDir, 'server/src/main/worker.js')],
    {
      env: processEnv,
      cwd: CHAOS_DIR,
      ready: ok(`http://127.0.0.1:${workerPort}/healthz`),
      startTimeoutMs: 120_000,
    },
  );
  cleanups.push(() => api.stop('SIGKILL'));
  cleanups.push(() => worker.stop('SIGTERM', 15_000));

  const gql = async (
    query: string,
    variables: Record<string, unknown>,
    token: string,
    timeoutMs = 20_000,
  ): Promise<GqlResult> => {
    const response = await fetch(`http://127.0.0.1:${apiPort}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
        [CSRF_HEADER]: '1',
      },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    try {
      const body = JSON.parse(text) as Omit<GqlResult, 'status'>;
      return { status: response.status, data: body.data ?? null, errors: body.errors };
    } catch {
      return { status: response.status, data: null, errors: [{ message: text.slice(0, 300) }] };
    }
  };

  return {
    root,
    dataDir: data.dataDir,
    customersRoot: data.customersRoot,
    workDir: staging.dir,
    downloadDir,
    staging,
    db,
    dbName,
    redisServer,
    rest,
    sftp,
    nginx,
    orm,
    redis,
    daily,
    sites,
    api,
    apiPort,
    worker,
    workerPort,
    gql,
    resticFor,
    readyz: ok(`http://127.0.0.1:${apiPort}/readyz`),
  };
}

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
