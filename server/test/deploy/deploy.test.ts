/**
 * The deployment files in deploy/, checked with the real tools of the machine they run on:
 * `nginx -t` and running nginx processes (as root, on loopback ports, temp prefixes),
 * `systemd-analyze verify` / `security`, and the example env file against every variable the
 * server and the scripts read.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseEnv, promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { parseConfig } from '../../src/config/config.js';
import { projectRoot } from '../../src/config/paths.js';
import {
  nginxMainConfig,
  selfSignedCertificate,
  substitute,
  writeAppSite,
  writeCustomerSite,
} from '../support/loopback-nginx.js';
import { freePort } from '../support/sandbox.js';

const run = promisify(execFile);
const NGINX = '/usr/sbin/nginx';
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const deployDir = path.join(projectRoot, 'deploy');
const unitDir = path.join(deployDir, 'systemd');

// --- cleanup: every test registers what it started; undone in reverse order ---------------------
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) {
    const undo = cleanups.pop();
    await undo?.().catch(() => {});
  }
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'deploy-test-'));
  // nginx workers run as nobody: they must reach the files inside.
  await chmod(dir, 0o755);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A minimal main nginx.conf around one site file, everything in a temp prefix. */
function mainConfig(prefix: string, siteFile: string): string {
  return nginxMainConfig(prefix, [siteFile]);
}

async function nginxTest(prefix: string, conf: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(NGINX, ['-t', '-p', `${prefix}/`, '-c', conf]);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited early:\n${log()}`);
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${port}:\n${log()}`);
}

/** A real nginx in the foreground (daemon off), stopped after the test. */
async function startNginx(prefix: string, conf: string, port: number): Promise<void> {
  const child = spawn(NGINX, ['-p', `${prefix}/`, '-c', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d) => (log += d));
  child.stderr?.on('data', (d) => (log += d));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  });
  await waitForPort(port, child, () => log);
}

async function listen(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(
  url: string,
  options: https.RequestOptions & { body?: string | Buffer } = {},
): Promise<Reply> {
  const { body, ...rest } = options;
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      { rejectUnauthorized: false, servername: 'backups.example.com', agent: false, ...rest },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The comment block right above line `index` of an env file, joined (its first line first). */
function commentAbove(lines: string[], index: number): string {
  let start = index;
  while (start > 0 && lines[start - 1]?.startsWith('#')) start -= 1;
  return lines.slice(start, index).join('\n');
}

// =================================================================================================
describe('backups.env.example', () => {
  async function readExample() {
    const text = await readFile(path.join(deployDir, 'backups.env.example'), 'utf8');
    return { text, lines: text.split('\n'), values: parseEnv(text) };
  }

  /** Every BACKUPS_* name the server config and the scripts read. */
  async function variablesInCode(): Promise<Set<string>> {
    const files = [path.join(projectRoot, 'server/src/config/config.ts')];
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== 'dev') await walk(full);
        } else files.push(full);
      }
    };
    await walk(path.join(projectRoot, 'scripts'));
    const names = new Set<string>();
    for (const file of files) {
      for (const m of (await readFile(file, 'utf8')).matchAll(/\bBACKUPS_[A-Z0-9_]+\b/g)) {
        names.add(m[0]);
      }
    }
    return names;
  }

  it('sets every variable the server and the scripts read, each explained by a comment', async () => {
    const { lines, values } = await readExample();
    const used = await variablesInCode();
    // Found in the code: the config schema alone has 25, the scripts add about 20.
    expect(used.size).toBeGreaterThan(35);
    // BACKUPS_ENV_FILE names this file itself: set by the units, documented in the header.
    used.delete('BACKUPS_ENV_FILE');
    const missing = [...used].filter((name) => !(name in values)).sort();
    expect(missing).toEqual([]);

    lines.forEach((line, i) => {
      if (/^[A-Z]/.test(line)) {
        expect(line, `line ${i + 1} is KEY=value`).toMatch(/^BACKUPS_[A-Z0-9_]+=\S*( \S+)*$/);
        expect(commentAbove(lines, i), `a comment above ${line} explains it`).toMatch(
          /^# \[(api\+worker|worker|worker secret|maintainer)\] \S/,
        );
      }
    });
  });

  it('is a valid production configuration for the server', async () => {
    const { values } = await readExample();
    const config = parseConfig(values);
    expect(config.BACKUPS_PUBLIC_URL).toBe('https://backups.example.com');
    expect(config.BACKUPS_API_HOST).toBe('127.0.0.1');
    expect(config.BACKUPS_API_PORT).toBe(4000);
    expect(config.BACKUPS_DATA_DIR).toBe('/var/lib/customer-backups');
    expect(values.BACKUPS_CUSTOMERS_ROOT).toBe('/var/customers');
    expect(values.BACKUPS_MANUAL_REPOSITORY).toMatch(/^sftp:backup@backup-host\.example:/);
  });

  it('holds no storage credentials, and keeps password files in the root-only secrets folder', async () => {
    const { text, values } = await readExample();
    expect(text).not.toMatch(/^(AWS_|RESTIC_|B2_|AZURE_|GOOGLE_)/m);
    const lines = text.split('\n');
    const commentOf = (name: string) =>
      commentAbove(
        lines,
        lines.findIndex((l) => l.startsWith(`${name}=`)),
      );
    const secretFiles = Object.keys(values).filter((n) => /PASSWORD_FILE|DEFAULTS_FILE/.test(n));
    expect(secretFiles).toHaveLength(4);
    for (const name of secretFiles) {
      expect(values[name], name).toMatch(/^\/var\/lib\/customer-backups\/secrets\//);
      expect(commentOf(name), name).toMatch(/^# \[worker secret\]/);
    }
    // What the api needs is marked as such; the repositories are not.
    for (const name of ['BACKUPS_DB_PASSWORD', 'BACKUPS_REDIS_URL', 'BACKUPS_PUBLIC_URL']) {
      expect(commentOf(name), name).toMatch(/^# \[api\+worker\]/);
    }
    expect(commentOf('BACKUPS_MANUAL_REPOSITORY')).toMatch(/^# \[worker\]/);
  });
});

// =================================================================================================
describe('nginx: the app site (deploy/nginx/customer-backups.conf)', () => {
  interface AppSite {
    prefix: string;
    conf: string;
    httpsPort: number;
    httpPort: number;
  }

  /** The shipped config, with only install paths, ports and the certificate replaced. */
  async function prepareAppSite(apiPort: number): Promise<AppSite> {
    const prefix = await tempDir();
    await mkdir(path.join(prefix, 'tmp'));
    // A self-signed certificate for backups.example.com.
    const certificate = await selfSignedCertificate(path.join(prefix, 'ssl'), {
      commonName: 'backups.example.com',
      altName: 'DNS:backups.example.com',
    });
    // A built app: index.html and a hashed bundle big enough to be gzipped.
    const dist = path.join(prefix, 'dist');
    await mkdir(path.join(dist, 'assets'), { recursive: true, mode: 0o755 });
    await chmod(dist, 0o755);
    await writeFile(
      path.join(dist, 'index.html'),
      '<!doctype html><title>Backups</title><div id="app"></div>',
    );
    await writeFile(
      path.join(dist, 'assets/index-3f2a91bc.js'),
      `console.log(${JSON.stringify('x'.repeat(4000))});\n`,
    );
    await chmod(path.join(dist, 'index.html'), 0o644);
    await chmod(path.join(dist, 'assets/index-3f2a91bc.js'), 0o644);

    const httpsPort = await freePort();
    const httpPort = await freePort();
    const siteFile = await writeAppSite(prefix, {
      httpsPort,
      httpPort,
      certificate,
      dist,
      apiPort,
    });
    const conf = path.join(prefix, 'nginx.conf');
    await writeFile(conf, mainConfig(prefix, siteFile));
    return { prefix, conf, httpsPort, httpPort };
  }

  it('passes nginx -t without warnings', async () => {
    const site = await prepareAppSite(await freePort());
    const result = await nginxTest(site.prefix, site.conf);
    expect(result.output).toContain('test is successful');
    expect(result.ok).toBe(true);
    expect(result.output).not.toMatch(/\[(warn|emerg|alert|crit|error)\]/);
  });

  it('nginx -t fails on a broken copy (the check is real)', async () => {
    const site = await prepareAppSite(await freePort());
    const siteFile = path.join(site.prefix, 'customer-backups.conf');
    const text = await readFile(siteFile, 'utf8');
    await writeFile(siteFile, substitute(text, 'proxy_read_timeout 1h;', 'proxy_read_timeout 1h'));
    const result = await nginxTest(site.prefix, site.conf);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/\[emerg\]/);
  });

  it('serves the SPA with caching and security headers, proxies /graphql over HTTP and WebSocket', async () => {
    // A stand-in for the api: records requests, echoes WebSocket messages.
    const seen: Array<{ url: string; headers: http.IncomingHttpHeaders; bodyLength: number }> = [];
    const api = http.createServer((req, res) => {
      let length = 0;
      req.on('data', (c: Buffer) => (length += c.length));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, bodyLength: length });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, data: { ok: true } }));
      });
    });
    const wss = new WebSocketServer({ server: api, path: '/graphql' });
    const upgrades: http.IncomingHttpHeaders[] = [];
    wss.on('connection', (socket, req) => {
      upgrades.push(req.headers);
      socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
    });
    cleanups.push(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    });
    const apiPort = await listen(api);

    const site = await prepareAppSite(apiPort);
    await startNginx(site.prefix, site.conf, site.httpsPort);
    const base = `https://127.0.0.1:${site.httpsPort}`;

    // Plain HTTP redirects to HTTPS.
    const plain = await request(`http://127.0.0.1:${site.httpPort}/some/page?x=1`);
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe('https://backups.example.com/some/page?x=1');

    // index.html, for / and for any client-side route: never cached without revalidation.
    for (const url of ['/', '/index.html', '/backups/daily']) {
      const res = await request(base + url);
      expect(res.status, url).toBe(200);
      expect(res.body.toString(), url).toContain('<div id="app">');
      expect(res.headers['cache-control'], url).toBe('no-cache');
      expect(res.headers['content-security-policy'], url).toContain("default-src 'self'");
    }

    // Security headers, and no nginx version anywhere.
    const home = await request(`${base}/`);
    const csp = String(home.headers['content-security-policy']);
    expect(csp).toContain("connect-src 'self' wss:");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(home.headers['strict-transport-security']).toMatch(/^max-age=\d{8,}/);
    expect(home.headers['x-content-type-options']).toBe('nosniff');
    expect(home.headers['referrer-policy']).toBe('no-referrer');
    expect(home.headers['permissions-policy']).toContain('camera=()');
    expect(home.headers.server).toBe('nginx');

    // Hashed assets: cached for a year, gzipped; a missing one is a 404, not index.html.
    const asset = await request(`${base}/assets/index-3f2a91bc.js`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(asset.status).toBe(200);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(asset.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(asset.body).toString()).toContain('console.log');
    expect(asset.headers['x-content-type-options']).toBe('nosniff');
    const missing = await request(`${base}/assets/nope-00000000.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers['content-security-policy']).toBeDefined();

    // /graphql over HTTP: proxied with the client's address; no-store; request size limited.
    const gql = await request(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(gql.status).toBe(200);
    expect(JSON.parse(gql.body.toString())).toEqual({ url: '/graphql', data: { ok: true } });
    expect(gql.headers['cache-control']).toBe('no-store');
    expect(gql.headers['content-security-policy']).toBeDefined();
    const forwarded = seen.find((r) => r.url === '/graphql');
    expect(forwarded?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(forwarded?.headers['x-forwarded-proto']).toBe('https');
    expect(forwarded?.headers.host).toBe('127.0.0.1');
    const tooBig = await request(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'x'.repeat(150_000) }),
    });
    expect(tooBig.status).toBe(413);

    // /graphql over WebSocket (graphql-ws subprotocol), through nginx to the api and back.
    const ws = new WebSocket(`wss://127.0.0.1:${site.httpsPort}/graphql`, 'graphql-transport-ws', {
      rejectUnauthorized: false,
    });
    cleanups.push(async () => ws.terminate());
    await once(ws, 'open');
    expect(ws.protocol).toBe('graphql-transport-ws');
    const reply = once(ws, 'message');
    ws.send(JSON.stringify({ type: 'connection_init' }));
    const [message] = await reply;
    expect(String(message)).toBe('echo:{"type":"connection_init"}');
    expect(upgrades[0]?.upgrade).toBe('websocket');
    expect(upgrades[0]?.connection?.toLowerCase()).toBe('upgrade');
    ws.close();

    // Health checks are proxied; metrics only from this machine.
    expect((await request(`${base}/healthz`)).status).toBe(200);
    expect((await request(`${base}/readyz`)).status).toBe(200);
    expect(seen.map((r) => r.url)).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
    expect((await request(`${base}/metrics`, { localAddress: '127.0.0.1' })).status).toBe(200);
    const outsider = await request(`${base}/metrics`, { localAddress: '127.0.0.2' });
    expect(outsider.status).toBe(403);
    expect(seen.filter((r) => r.url === '/metrics')).toHaveLength(1);
  });
});

// =================================================================================================
describe('nginx: the customer-site maintenance snippet', () => {
  interface CustomerSite {
    prefix: string;
    conf: string;
    siteDir: string;
    port: number;
  }

  /** example-customer-site.conf with the snippet, the site folder and the container port
   * pointed at temp ones. */
  async function prepareCustomerSite(upstreamPort: number): Promise<CustomerSite> {
    const prefix = await tempDir();
    await mkdir(path.join(prefix, 'tmp'));
    // The site folder: searchable but not readable by others, like a customer's folder.
    const siteDir = path.join(prefix, 'customer-42');
    await mkdir(siteDir, { mode: 0o711 });
    await chmod(siteDir, 0o711);
    const port = await freePort();
    const siteFile = await writeCustomerSite(prefix, { port, siteDir, upstreamPort });
    const conf = path.join(prefix, 'nginx.conf');
    await writeFile(conf, mainConfig(prefix, siteFile));
    return { prefix, conf, siteDir, port };
  }

  it('passes nginx -t without warnings inside a customer site', async () => {
    const site = await prepareCustomerSite(await freePort());
    const result = await nginxTest(site.prefix, site.conf);
    expect(result.output).toContain('test is successful');
    expect(result.ok).toBe(true);
    expect(result.output).not.toMatch(/\[(warn|emerg|alert|crit|error)\]/);
  });

  it('makes nginx -t fail when the site forgets to set $customer_site_dir', async () => {
    const site = await prepareCustomerSite(await freePort());
    const siteFile = path.join(site.prefix, 'customer-site.conf');
    const text = await readFile(siteFile, 'utf8');
    await writeFile(siteFile, substitute(text, `set $customer_site_dir ${site.siteDir};`, ''));
    const result = await nginxTest(site.prefix, site.conf);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('unknown "customer_site_dir" variable');
  });

  it('answers 503 with the maintenance page exactly while <site>/.maintenance exists', async () => {
    // The site's container: counts what reaches it.
    let hits = 0;
    const container = http.createServer((req, res) => {
      hits += 1;
      req.resume();
      req.on('end', () => {
        if (req.url === '/busy') {
          // The site's own 503 is passed through untouched.
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('site busy');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`shop ${req.method} ${req.url}`);
      });
    });
    const upstreamPort = await listen(container);
    const site = await prepareCustomerSite(upstreamPort);
    await startNginx(site.prefix, site.conf, site.port);
    const url = (p: string) => `http://127.0.0.1:${site.port}${p}`;
    const flag = path.join(site.siteDir, '.maintenance');

    const before = await request(url('/product/7'));
    expect(before.status).toBe(200);
    expect(before.body.toString()).toBe('shop GET /product/7');
    expect((await request(url('/busy'))).body.toString()).toBe('site busy');

    await writeFile(flag, '');
    const hitsBefore = hits;
    for (const [method, p] of [
      ['GET', '/'],
      ['GET', '/product/7?ref=mail'],
      ['POST', '/checkout'],
      ['GET', '/wp-admin/admin-ajax.php'],
      ['GET', '/maintenance.html'],
      ['GET', '/busy'],
    ] as const) {
      const res = await request(url(p), {
        method,
        body: method === 'POST' ? 'item=7' : undefined,
        headers: method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
      });
      expect(res.status, `${method} ${p}`).toBe(503);
      expect(res.headers['retry-after'], `${method} ${p}`).toBe('30');
      expect(res.headers['cache-control'], `${method} ${p}`).toBe('no-store');
      expect(res.headers['content-type'], `${method} ${p}`).toMatch(/^text\/html/);
      expect(res.body.toString(), `${method} ${p}`).toContain(
        "We're restoring this site from a backup",
      );
    }
    const head = await request(url('/'), { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect(head.headers['retry-after']).toBe('30');
    // Nothing reached the stopped site.
    expect(hits).toBe(hitsBefore);

    await rm(flag);
    const after = await request(url('/product/7'));
    expect(after.status).toBe(200);
    expect(after.body.toString()).toBe('shop GET /product/7');
    expect(after.headers['retry-after']).toBeUndefined();
    // The page's own location is internal: not reachable from outside.
    expect((await request(url('/.customer-site-maintenance.html'))).status).toBe(404);
  });
});

// =================================================================================================
describe('maintenance.html', () => {
  it('is self-contained, refreshes every 10 s, fits a phone and follows the colour scheme', async () => {
    const html = await readFile(path.join(deployDir, 'maintenance.html'), 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/i);
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toMatch(/<meta http-equiv="refresh" content="10">/);
    expect(html).toMatch(/<meta name="viewport" content="width=device-width, initial-scale=1">/);
    expect(html).toContain('@media (prefers-color-scheme: dark)');
    expect(html).toContain("We're restoring this site from a backup");
    expect(html).toContain('back in a few seconds');
    // No external resources of any kind.
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).not.toMatch(/url\(|@import/);
    // No fixed width wider than a 375 px screen.
    for (const m of html.matchAll(/(?<![-\w])(?:min-)?width:\s*(\d+)px/g)) {
      expect(Number(m[1])).toBeLessThanOrEqual(375);
    }
  });
});

// =================================================================================================
describe('systemd units', () => {
  const units = [
    'customer-backups-api.service',
    'customer-backups-worker.service',
    'customer-backups-maintainer.service',
    'customer-backups-rest-server.service',
    'customer-backups-rest-server-maintainer.service',
  ];

  async function verify(file: string): Promise<{ code: number; output: string }> {
    try {
      const { stdout, stderr } = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', file]);
      return { code: 0, output: stdout + stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  /** What verify may print here: only that /usr/bin/node is missing, on a machine without it. */
  function unexpected(output: string): string[] {
    const nodeMissing = /Command \/usr\/bin\/node is not executable/;
    return output
      .split('\n')
      .filter((l) => l.trim() !== '')
      .filter((l) => !(nodeMissing.test(l) && process.execPath !== '/usr/bin/node'));
  }

  async function keys(unit: string): Promise<Array<[string, string]>> {
    const text = await readFile(path.join(unitDir, unit), 'utf8');
    return text
      .split('\n')
      .filter((l) => /^[A-Za-z]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]);
  }
  const value = (kv: Array<[string, string]>, key: string) =>
    kv.filter(([k]) => k === key).map(([, v]) => v);

  for (const unit of units) {
    it(`${unit}: systemd-analyze verify reports nothing`, async () => {
      const result = await verify(path.join(unitDir, unit));
      expect(unexpected(result.output)).toEqual([]);
      if (process.execPath === '/usr/bin/node') expect(result.code).toBe(0);
    });

    it(`${unit}: verify does catch a mistake in a copy (the check is real)`, async () => {
      const dir = await tempDir();
      const text = await readFile(path.join(unitDir, unit), 'utf8');
      const broken = substitute(
        substitute(text, 'ProtectSystem=strict', 'ProtectSytem=strict'),
        'SystemCallFilter=@system-service',
        'SystemCallFilter=@system-servic',
      );
      await writeFile(path.join(dir, unit), broken);
      const problems = unexpected((await verify(path.join(dir, unit))).output);
      expect(problems.some((l) => l.includes("Unknown key 'ProtectSytem'"))).toBe(true);
      expect(problems.some((l) => l.includes('@system-servic'))).toBe(true);
    });
  }

  async function exposure(unit: string): Promise<number> {
    const { stdout } = await run(SYSTEMD_ANALYZE, [
      'security',
      '--offline=yes',
      '--no-pager',
      path.join(unitDir, unit),
    ]);
    const m = stdout.match(/Overall exposure level for \S+: (\d+(?:\.\d+)?)/);
    if (!m) throw new Error(`no exposure level in:\n${stdout}`);
    return Number(m[1]);
  }

  it('the api is unprivileged, tightly sandboxed and cannot reach the backup secrets', async () => {
    const kv = await keys('customer-backups-api.service');
    expect(value(kv, 'User')).toEqual(['customer-backups']);
    expect(value(kv, 'ExecStart')).toEqual([
      '/usr/bin/node /opt/customer-backups/server/dist/server/src/main/api.js',
    ]);
    expect(value(kv, 'EnvironmentFile')).toEqual(['/etc/customer-backups/backups.env']);
    expect(value(kv, 'CapabilityBoundingSet')).toEqual(['']);
    expect(value(kv, 'ProtectSystem')).toEqual(['strict']);
    expect(value(kv, 'RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX']);
    expect(value(kv, 'MemoryDenyWriteExecute')).toEqual([]);
    expect(value(kv, 'ReadWritePaths')).toEqual([]);
    const hidden = value(kv, 'InaccessiblePaths').join(' ');
    expect(hidden).toContain('/var/lib/customer-backups');
    expect(hidden).toContain('/etc/customer-backups/worker.env');
    // systemd's own score (0 best .. 10 worst); a plain unit scores 9.6.
    expect(await exposure('customer-backups-api.service')).toBeLessThanOrEqual(2);
  });

  it('the worker is root, stops gracefully for a running restore, and is still sandboxed', async () => {
    const kv = await keys('customer-backups-worker.service');
    expect(value(kv, 'User')).toEqual(['root']);
    expect(value(kv, 'ExecStart')).toEqual([
      '/usr/bin/node /opt/customer-backups/server/dist/server/src/main/worker.js',
    ]);
    expect(value(kv, 'EnvironmentFile')).toEqual([
      '/etc/customer-backups/backups.env',
      '-/etc/customer-backups/worker.env',
    ]);
    expect(value(kv, 'KillMode')).toEqual(['mixed']);
    expect(value(kv, 'KillSignal')).toEqual(['SIGTERM']);
    expect(value(kv, 'Restart')).toEqual(['always']);
    expect(value(kv, 'PrivateTmp')).toEqual(['no']);
    expect(value(kv, 'ProtectHome')).toEqual(['no']);
    expect(value(kv, 'MemoryDenyWriteExecute')).toEqual([]);
    expect(value(kv, 'ReadWritePaths').join(' ')).toMatch(
      /\/var\/lib\/customer-backups .*\/var\/customers .*\/tmp/,
    );
    // The stop timeout outlasts the longest restore the example configuration allows.
    const [timeout] = value(kv, 'TimeoutStopSec');
    const minutes = Number(/^(\d+)min$/.exec(timeout ?? '')?.[1]);
    const env = parseEnv(await readFile(path.join(deployDir, 'backups.env.example'), 'utf8'));
    expect(minutes * 60).toBeGreaterThan(Number(env.BACKUPS_RESTORE_TIMEOUT_SECONDS));
    expect(await exposure('customer-backups-worker.service')).toBeLessThanOrEqual(5);
  });
});
