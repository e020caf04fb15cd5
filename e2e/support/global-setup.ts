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
import { freePort, nginxMainConfig, substitute } from '../../server/test/support/loopback-nginx';
import {
  E2E_DIR,
  type E2eCustomer,
  type E2eSystem,
  ENV_FILE_VARIABLE,
  REPO_DIR,
  SERVER_DIR,
} from './env';

const NGINX = '/usr/sbin/nginx';
const DEPLOY_DIR = path.join(REPO_DIR, 'deploy');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(statement: string): Promise<string> {
  const r = await execa('mariadb', ['-uroot', '-N', '-B', '-e', statement]);
  return r.stdout;
}

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
  const dataDir = path.join(tmpDir, 'data');
  const customersRoot = path.join(dataDir, 'customers');
  const siteStateDir = path.join(tmpDir, 'site-state');
  await mkdir(customersRoot, { recursive: true, mode: 0o755 });
  await chmod(dataDir, 0o755);
  await chmod(customersRoot, 0o755);
  await mkdir(siteStateDir, { recursive: true });
  await mkdir(path.join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  const customerDbDefaultsFile = path.join(dataDir, 'secrets', 'customer-db.cnf');
  await writeFile(customerDbDefaultsFile, '[client]\nuser=root\nsocket=/run/mysqld/mysqld.sock\n', {
    mode: 0o600,
  });

  const dbName = `backups_e2e_${hex}`;
  const redisPrefix = `e2e${hex}`;
  const node = `e2e-${hex}`;
  const commands = siteCommands(siteStateDir);
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpDir,
    BACKUPS_ENV_FILE: path.join(tmpDir, 'none.env'),
    BACKUPS_DATA_DIR: dataDir,
    BACKUPS_CUSTOMERS_ROOT: customersRoot,
    BACKUPS_CUSTOMER_DB_DEFAULTS_FILE: customerDbDefaultsFile,
    BACKUPS_DB_NAME: dbName,
    BACKUPS_REDIS_PREFIX: redisPrefix,
    BACKUPS_NODE: node,
    BACKUPS_LOG_LEVEL: 'info',
    BACKUPS_RESTIC_RETRY_LOCK: '30s',
    BACKUPS_SITE_STOP_COMMAND: commands.stop,
    BACKUPS_SITE_START_COMMAND: commands.start,
  };

  for (const kind of ['manual', 'daily']) {
    await execa(path.join(REPO_DIR, 'scripts/backup-repository'), [kind, 'init'], {
      env: baseEnv,
      extendEnv: false,
    });
  }

  // --- application database ------------------------------------------------------------------
  await sql(`CREATE DATABASE \`${dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  cleanups.push(() => sql(`DROP DATABASE IF EXISTS \`${dbName}\``));
  const cli = (args: string[], input = '') =>
    execa(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], {
      cwd: SERVER_DIR,
      input,
      env: { ...baseEnv, BACKUPS_LOG_LEVEL: 'warn' },
      extendEnv: false,
    });
  await cli(['migrate']);
  // Far from 1, and from the executors' tests (700M-799M): the MariaDB server is shared.
  const firstId = 1_000_000_000 + Math.floor(Math.random() * 900_000_000);
  await sql(`ALTER TABLE \`${dbName}\`.customers AUTO_INCREMENT = ${firstId}`);

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
    cleanups.push(() =>
      sql(
        `DROP DATABASE IF EXISTS customer_${id}; DROP DATABASE IF EXISTS customer_${id}__restore; DROP DATABASE IF EXISTS customer_${id}__previous`,
      ),
    );
    customers.push({ id, email, name, password, siteDir, sitePort: await freePort() });
  }
  await execa(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { createDemoSite, createDemoDatabase } from './src/customers/demo-site.ts';
       const [root, defaults, ...ids] = process.argv.slice(1);
       for (const id of ids) {
         await createDemoSite(root, Number(id), 'wordpress');
         await createDemoDatabase(defaults, Number(id));
       }`,
      customersRoot,
      customerDbDefaultsFile,
      ...customers.map((c) => String(c.id)),
    ],
    { cwd: SERVER_DIR, env: baseEnv, extendEnv: false },
  );
  for (const c of customers) {
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
  cleanups.push(async () => {
    const keys = (await execa('redis-cli', ['--scan', '--pattern', `${redisPrefix}:*`])).stdout
      .split('\n')
      .filter(Boolean);
    for (let i = 0; i < keys.length; i += 200) {
      await execa('redis-cli', ['del', ...keys.slice(i, i + 200)]);
    }
  });

  // --- nginx files ----------------------------------------------------------------------------
  const apiPort = await freePort();
  const httpsPort = await freePort();
  const httpPort = await freePort();
  const sitePort = await freePort();
  const prefix = path.join(tmpDir, 'nginx');
  await mkdir(path.join(prefix, 'tmp'), { recursive: true });
  await mkdir(path.join(prefix, 'snippets'), { recursive: true });
  await chmod(prefix, 0o755);
  await chmod(path.join(prefix, 'snippets'), 0o755);
  // A copy of the built SPA (web/dist is rebuilt by others while the tests run).
  const distSource = path.join(REPO_DIR, 'web/dist');
  if (!existsSync(path.join(distSource, 'index.html'))) {
    await execa('pnpm', ['--filter', '@backups/web', 'build'], { cwd: REPO_DIR });
  }
  const dist = path.join(prefix, 'dist');
  await cp(distSource, dist, { recursive: true });
  await execa('chmod', ['-R', 'a+rX', dist]);
  const ssl = path.join(prefix, 'ssl');
  await mkdir(ssl, { mode: 0o700 });
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    path.join(ssl, 'key.pem'),
    '-out',
    path.join(ssl, 'cert.pem'),
  ]);
  await cp(
    path.join(DEPLOY_DIR, 'nginx/customer-backups-headers.conf'),
    path.join(prefix, 'snippets/customer-backups-headers.conf'),
  );
  const page = path.join(prefix, 'maintenance.html');
  await cp(path.join(DEPLOY_DIR, 'maintenance.html'), page);
  await chmod(page, 0o644);
  const snippet = await readFile(
    path.join(DEPLOY_DIR, 'nginx/customer-site-maintenance.conf'),
    'utf8',
  );
  await writeFile(
    path.join(prefix, 'snippets/customer-site-maintenance.conf'),
    substitute(snippet, 'alias /opt/customer-backups/deploy/maintenance.html;', `alias ${page};`),
  );

  let app = await readFile(path.join(DEPLOY_DIR, 'nginx/customer-backups.conf'), 'utf8');
  app = substitute(app, 'listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`);
  app = substitute(app, 'listen [::]:443 ssl http2;', '');
  app = substitute(app, 'listen 80;', `listen 127.0.0.1:${httpPort};`);
  app = substitute(app, 'listen [::]:80;', '');
  app = substitute(app, '/etc/ssl/certs/backups.example.com.pem', path.join(ssl, 'cert.pem'));
  app = substitute(app, '/etc/ssl/private/backups.example.com.key', path.join(ssl, 'key.pem'));
  app = substitute(app, '/opt/customer-backups/web/dist', dist);
  app = substitute(app, 'server 127.0.0.1:4000;', `server 127.0.0.1:${apiPort};`);
  app = substitute(
    app,
    'include /etc/nginx/snippets/customer-backups-headers.conf;',
    `include ${prefix}/snippets/customer-backups-headers.conf;`,
    4,
  );
  const appFile = path.join(prefix, 'customer-backups.conf');
  await writeFile(appFile, app);

  let site = await readFile(path.join(DEPLOY_DIR, 'nginx/example-customer-site.conf'), 'utf8');
  site = substitute(site, 'listen 80;', `listen 127.0.0.1:${sitePort};`);
  site = substitute(site, 'listen [::]:80;', '');
  site = substitute(
    site,
    'set $customer_site_dir /var/customers/customer-42;',
    `set $customer_site_dir ${demo.siteDir};`,
  );
  site = substitute(
    site,
    'include /etc/nginx/snippets/customer-site-maintenance.conf;',
    `include ${prefix}/snippets/customer-site-maintenance.conf;`,
  );
  site = substitute(
    site,
    'proxy_pass http://127.0.0.1:8080;',
    `proxy_pass http://127.0.0.1:${demo.sitePort};`,
  );
  const siteFile = path.join(prefix, 'customer-site.conf');
  await writeFile(siteFile, site);

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
  const serverEnv = {
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
        BACKUPS_DAILY_ENABLED: 'false',
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
