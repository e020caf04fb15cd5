/**
 * Starts the whole system from scratch, on loopback only, and stops it afterwards:
 *   - a throw-away application database on MariaDB, migrated with the ops CLI;
 *   - a temp data dir with its own restic repositories and customer-db defaults file;
 *   - two customers (the demo customer and another one) with real site folders and databases,
 *     at ids far from 1 (the MariaDB server is shared with other test files);
 *   - a Redis prefix of its own;
 *   - the api and the worker (server/src/main/*.ts through tsx), each in its own process group;
 *   - each customer's "site": a tiny web server started/stopped by the site commands;
 *   - nginx, configured from the shipped deploy/nginx files: the app site (SPA + /graphql over
 *     HTTP and WebSocket, HTTPS with a throw-away certificate) and the demo customer's site with
 *     the maintenance snippet.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, openSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createDemoDatabase, createDemoSite } from '../../server/src/customers/demo-site';
import {
  nginxMainConfig,
  selfSignedCertificate,
  writeAppSite,
  writeCustomerSite,
} from '../../server/test/support/loopback-nginx';
import {
  CUSTOMER_IDS,
  clearRedisPrefix,
  createAppDatabase,
  createDataDir,
  dropCustomerDatabases,
  freePort,
  initRepositories,
  startCustomerIds,
} from '../../server/test/support/sandbox';
import {
  E2E_DIR,
  type E2eCustomer,
  type E2eSystem,
  ENV_FILE_VARIABLE,
  REPO_DIR,
  SERVER_DIR,
} from './env';

const NGINX = '/usr/sbin/nginx';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started {
  name: string;
  child: ChildProcess;
}

/** A long-running child in its own process group, its output in a log file. */
function startProcess(
  name: string,
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; logsDir: string },
): Started {
  const log = openSync(path.join(options.logsDir, `${name}.log`), 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  return { name, child };
}

async function stopProcess({ child }: Started): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }, 15_000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  alive: () => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what}: the process exited`);
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}

function httpsStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

/** The site commands the worker runs in the site folder (env CUSTOMER_ID, SITE_DIR). */
function siteCommands(stateDir: string): { stop: string; start: string } {
  const server = path.join(E2E_DIR, 'support', 'site-server.mjs');
  const base = `"${stateDir}/customer-$CUSTOMER_ID"`;
  const note = `if [ -e .maintenance ]; then m=maintenance; else m=open; fi; echo "$0 $m $(date +%s%3N)" >> ${base}.events`;
  // Stop: the site's server ends, then (like containers going down) a pause, so the switch-over
  // window is long enough to be seen from outside.
  const stop = [
    `pf=${base}.pid`,
    `if [ -s "$pf" ]; then p=$(cat "$pf"); kill "$p" 2>/dev/null || true; for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done; rm -f "$pf"; fi`,
    'sleep 1.5',
    note.replace('$0', 'stop'),
  ].join('; ');
  const start = [
    `pf=${base}.pid`,
    'rm -f "$pf"',
    `setsid -f "${process.execPath}" "${server}" "$SITE_DIR" "$(cat ${base}.port)" "$pf" </dev/null >>${base}.log 2>&1`,
    'for i in $(seq 1 200); do [ -s "$pf" ] && break; sleep 0.05; done',
    '[ -s "$pf" ] || exit 1',
    note.replace('$0', 'start'),
  ].join('; ');
  return { stop, start };
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const started: Started[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  const teardown = async () => {
    for (const p of started.reverse()) await stopProcess(p).catch(() => undefined);
    for (const undo of cleanups.reverse()) await undo().catch(() => undefined);
  };
  try {
    return await setUp(started, cleanups, teardown);
  } catch (error) {
    await teardown();
    throw error;
  }
}

async function setUp(
  started: Started[],
  cleanups: Array<() => Promise<unknown>>,
  teardown: () => Promise<void>,
): Promise<() => Promise<void>> {
  const hex = randomBytes(4).toString('hex');
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'backups-e2e-'));
  // nginx's workers (nobody) must reach the site folders, the SPA and the maintenance page.
  await chmod(tmpDir, 0o755);
  // The processes' logs; kept under test-results/system-logs/ after the run.
  const logsDir = path.join(tmpDir, 'logs');
  await mkdir(logsDir, { recursive: true });
  cleanups.push(() => rm(tmpDir, { recursive: true, force: true }));
  cleanups.push(async () => {
    const kept = path.join(E2E_DIR, 'test-results', 'system-logs');
    await rm(kept, { recursive: true, force: true });
    await cp(logsDir, kept, { recursive: true });
    await cp(siteStateDir, path.join(kept, 'site-state'), { recursive: true });
  });

  // --- data dir, repositories, customer-db defaults ------------------------------------------
  const data = await createDataDir({ dir: path.join(tmpDir, 'data') });
  const { dataDir, customersRoot, customerDbDefaultsFile } = data;
  const siteStateDir = path.join(tmpDir, 'site-state');
  await chmod(dataDir, 0o755);
  await chmod(customersRoot, 0o755);
  await mkdir(siteStateDir, { recursive: true });

  const database = await createAppDatabase('backups_e2e');
  cleanups.push(() => database.drop());
  const dbName = database.name;
  const redisPrefix = `e2e${hex}`;
  const node = `e2e-${hex}`;
  const commands = siteCommands(siteStateDir);
  const baseEnv: Record<string, string> = {
    ...data.env,
    HOME: process.env.HOME ?? tmpDir,
    BACKUPS_DB_NAME: dbName,
    BACKUPS_REDIS_PREFIX: redisPrefix,
    BACKUPS_NODE: node,
    BACKUPS_LOG_LEVEL: 'info',
    BACKUPS_RESTIC_RETRY_LOCK: '30s',
    BACKUPS_SITE_STOP_COMMAND: commands.stop,
    BACKUPS_SITE_START_COMMAND: commands.start,
  };
  await initRepositories(baseEnv);

  // --- application database, migrated with the ops CLI ---------------------------------------
  const cli = (args: string[], input = '') =>
    execa(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], {
      cwd: SERVER_DIR,
      input,
      env: { ...baseEnv, BACKUPS_LOG_LEVEL: 'warn' },
      extendEnv: false,
    });
  await cli(['migrate']);
  await startCustomerIds(dbName, CUSTOMER_IDS.e2e);

  // --- customers: rows, site folders, databases, site servers ---------------------------------
  const customers: E2eCustomer[] = [];
  for (const [email, name] of [
    ['demo@example.com', 'Demo Shop'],
    ['other@example.com', 'Other Bakery'],
  ] as const) {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    const added = await cli(
      ['customer:add', '--email', email, '--name', name, '--password-file', '-', '--host', node],
      password,
    );
    const line = added.stdout.split('\n').find((l) => l.startsWith('{'));
    const id = (JSON.parse(line ?? '{}') as { id?: number }).id;
    if (!id) throw new Error(`customer:add printed no id: ${added.stdout}`);
    const siteDir = path.join(customersRoot, `customer-${id}`);
    cleanups.push(() => dropCustomerDatabases(id));
    customers.push({ id, email, name, password, siteDir, sitePort: await freePort() });
  }
  for (const c of customers) {
    await createDemoSite(customersRoot, c.id, 'wordpress');
    await createDemoDatabase(customerDbDefaultsFile, c.id);
    await chmod(c.siteDir, 0o755);
    await writeFile(path.join(siteStateDir, `customer-${c.id}.port`), `${c.sitePort}\n`);
    await execa('bash', ['-c', commands.start], {
      cwd: c.siteDir,
      env: { ...baseEnv, CUSTOMER_ID: String(c.id), SITE_DIR: c.siteDir },
      extendEnv: false,
    });
    cleanups.push(async () => {
      const pid = Number(
        await readFile(path.join(siteStateDir, `customer-${c.id}.pid`), 'utf8').catch(() => ''),
      );
      if (pid > 0) process.kill(pid, 'SIGTERM');
    });
  }
  const [demo, other] = customers as [E2eCustomer, E2eCustomer];
  cleanups.push(() => clearRedisPrefix(redisPrefix));

  // --- nginx files ----------------------------------------------------------------------------
  const apiPort = await freePort();
  const httpsPort = await freePort();
  const httpPort = await freePort();
  const sitePort = await freePort();
  const downloadPort = await freePort();
  const prefix = path.join(tmpDir, 'nginx');
  await mkdir(path.join(prefix, 'tmp'), { recursive: true });
  await chmod(prefix, 0o755);
  // A copy of the built SPA (web/dist is rebuilt by others while the tests run).
  const distSource = path.join(REPO_DIR, 'web/dist');
  if (!existsSync(path.join(distSource, 'index.html'))) {
    await execa('pnpm', ['--filter', '@backups/web', 'build'], { cwd: REPO_DIR });
  }
  const dist = path.join(prefix, 'dist');
  await cp(distSource, dist, { recursive: true });
  await execa('chmod', ['-R', 'a+rX', dist]);
  const certificate = await selfSignedCertificate(path.join(prefix, 'ssl'), {
    commonName: '127.0.0.1',
    altName: 'IP:127.0.0.1',
  });
  const appFile = await writeAppSite(prefix, {
    httpsPort,
    httpPort,
    certificate,
    dist,
    apiPort,
    downloads: { node, port: downloadPort },
  });
  const siteFile = await writeCustomerSite(prefix, {
    port: sitePort,
    siteDir: demo.siteDir,
    upstreamPort: demo.sitePort,
  });

  const nginxConf = path.join(prefix, 'nginx.conf');
  await writeFile(
    nginxConf,
    nginxMainConfig(prefix, [appFile, siteFile], {
      errorLog: `${logsDir}/nginx-error.log`,
      workerConnections: 256,
    }),
  );
  await execa(NGINX, ['-t', '-q', '-p', `${prefix}/`, '-c', nginxConf]);

  // --- processes ------------------------------------------------------------------------------
  const baseUrl = `https://127.0.0.1:${httpsPort}`;
  // The hosting company's dashboard: a real OpenID provider, where the demo customer signs in.
  const oidcPort = await freePort();
  const oidcIssuer = `http://127.0.0.1:${oidcPort}`;
  const oidcSecret = randomBytes(16).toString('hex');
  const oidc = startProcess(
    'oidc-provider',
    process.execPath,
    [
      path.join(SERVER_DIR, 'test/support/oidc-provider.mjs'),
      String(oidcPort),
      'backups',
      oidcSecret,
      `${baseUrl}/auth/oidc/callback`,
    ],
    {
      cwd: SERVER_DIR,
      env: {
        PATH: baseEnv.PATH ?? '',
        OIDC_ACCOUNTS: JSON.stringify({ 'dash-demo': { email: demo.email, email_verified: true } }),
      },
      logsDir,
    },
  );
  started.push(oidc);
  await waitFor(
    'oidc-provider',
    async () => (await fetch(`${oidcIssuer}/.well-known/openid-configuration`)).status === 200,
    () => oidc.child.exitCode === null,
  );
  const serverEnv = {
    BACKUPS_OIDC_ISSUER: oidcIssuer,
    BACKUPS_OIDC_CLIENT_ID: 'backups',
    BACKUPS_OIDC_CLIENT_SECRET: oidcSecret,
    BACKUPS_OIDC_NAME: 'Hosting Dashboard',
    BACKUPS_OIDC_ALLOW_HTTP: 'true',
    ...baseEnv,
    BACKUPS_API_HOST: '127.0.0.1',
    BACKUPS_API_PORT: String(apiPort),
    BACKUPS_PUBLIC_URL: baseUrl,
    BACKUPS_WEB_DIR: dist,
    BACKUPS_TRUST_PROXY: 'true',
    // Several browser contexts sign in and a test makes six backups in a row.
    BACKUPS_SIGNIN_LIMIT_PER_IP: '200',
    BACKUPS_SIGNIN_LIMIT_PER_EMAIL: '100',
    BACKUPS_JOB_LIMIT_PER_CUSTOMER: '100',
  };
  const api = startProcess('api', process.execPath, ['--import', 'tsx', 'src/main/api.ts'], {
    cwd: SERVER_DIR,
    env: serverEnv,
    logsDir,
  });
  started.push(api);
  const worker = startProcess(
    'worker',
    process.execPath,
    ['--import', 'tsx', 'src/main/worker.ts'],
    {
      cwd: SERVER_DIR,
      env: {
        ...serverEnv,
        BACKUPS_WORKER_PORT: '0',
        BACKUPS_DOWNLOAD_PORT: String(downloadPort),
        BACKUPS_DAILY_ENABLED: 'false',
        // the browsing test asks for its index as a customer does (Browse)
        BACKUPS_INDEX_NEW_BACKUPS: 'false',
        BACKUPS_SHUTDOWN_GRACE_SECONDS: '20',
      },
      logsDir,
    },
  );
  started.push(worker);
  const nginx = startProcess('nginx', NGINX, ['-p', `${prefix}/`, '-c', nginxConf], {
    cwd: prefix,
    env: { PATH: baseEnv.PATH ?? '' },
    logsDir,
  });
  started.push(nginx);
  const alive = (p: Started) => () => p.child.exitCode === null && p.child.signalCode === null;

  await waitFor(
    'api',
    async () => (await fetch(`http://127.0.0.1:${apiPort}/readyz`)).status === 200,
    alive(api),
  );
  await waitFor(
    'worker',
    async () => (await readFile(path.join(logsDir, 'worker.log'), 'utf8')).includes('worker ready'),
    alive(worker),
  );
  await waitFor(
    'nginx',
    async () => (await httpsStatus(`${baseUrl}/readyz`)) === 200,
    alive(nginx),
  );

  const system: E2eSystem = {
    baseUrl,
    siteUrl: `http://127.0.0.1:${sitePort}`,
    tmpDir,
    dataDir,
    customersRoot,
    siteStateDir,
    logsDir,
    dbName,
    redisPrefix,
    node,
    manualPasswordFile: path.join(dataDir, 'secrets', 'manual-repository.pass'),
    customerDbDefaultsFile,
    demo,
    other,
  };
  const systemFile = path.join(tmpDir, 'system.json');
  await writeFile(systemFile, JSON.stringify(system, null, 2));
  process.env[ENV_FILE_VARIABLE] = systemFile;
  return teardown;
}
