import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../../src/config/paths.js';

/**
 * Helpers for running the shipped deploy/nginx files on loopback in tests (the deploy tests
 * and the browser tests both do): the sites with only install paths, ports and the
 * certificate replaced, a main nginx.conf around them, and a throw-away certificate.
 */

const DEPLOY_DIR = path.join(projectRoot, 'deploy');
const NGINX_DIR = path.join(DEPLOY_DIR, 'nginx');

/** Replaces `search` and insists it occurred exactly `count` times, so a stale test cannot
 * silently stop substituting what it means to. */
export function substitute(text: string, search: string, replacement: string, count = 1): string {
  const found = text.split(search).length - 1;
  if (found !== count) {
    throw new Error(`expected ${count} occurrence(s) of ${JSON.stringify(search)}, found ${found}`);
  }
  return text.split(search).join(replacement);
}

/** A minimal main nginx.conf around the given site files, everything under a temp prefix. */
export function nginxMainConfig(
  prefix: string,
  siteFiles: string[],
  options: { errorLog?: string; workerConnections?: number } = {},
): string {
  return `
user nobody nogroup;
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
lock_file ${prefix}/nginx.lock;
error_log ${options.errorLog ?? 'stderr'} warn;
events { worker_connections ${options.workerConnections ?? 128}; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
${siteFiles.map((file) => `  include ${file};`).join('\n')}
}
`;
}

export interface Certificate {
  cert: string;
  key: string;
}

/** A self-signed certificate (P-256, two days) in a new folder `dir`, e.g. for
 * `{ commonName: '127.0.0.1', altName: 'IP:127.0.0.1' }`. */
export async function selfSignedCertificate(
  dir: string,
  subject: { commonName: string; altName: string },
): Promise<Certificate> {
  await mkdir(dir, { mode: 0o700 });
  const certificate = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
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
    `/CN=${subject.commonName}`,
    '-addext',
    `subjectAltName=${subject.altName}`,
    '-keyout',
    certificate.key,
    '-out',
    certificate.cert,
  ]);
  return certificate;
}

async function snippetsDir(prefix: string): Promise<string> {
  const snippets = path.join(prefix, 'snippets');
  await mkdir(snippets, { recursive: true, mode: 0o755 });
  await chmod(snippets, 0o755);
  return snippets;
}

/**
 * deploy/nginx/customer-backups.conf (the app site) on loopback ports, with the certificate,
 * the built app and the api's port given, and its headers snippet copied beside it. Returns
 * the site file, <prefix>/customer-backups.conf.
 */
export async function writeAppSite(
  prefix: string,
  options: {
    httpsPort: number;
    httpPort: number;
    certificate: Certificate;
    dist: string;
    apiPort: number;
    /**
     * The download location: which node's links go to which worker port, and the folder of
     * its archives that nginx sends itself (the worker's BACKUPS_DOWNLOAD_ACCEL_PREFIX is
     * then ACCEL_PREFIX).
     */
    downloads?: { node: string; port: number; dir?: string };
  },
): Promise<string> {
  const snippets = await snippetsDir(prefix);
  await copyFile(
    path.join(NGINX_DIR, 'customer-backups-headers.conf'),
    path.join(snippets, 'customer-backups-headers.conf'),
  );
  let site = await readFile(path.join(NGINX_DIR, 'customer-backups.conf'), 'utf8');
  site = substitute(
    site,
    'listen 443 ssl http2;',
    `listen 127.0.0.1:${options.httpsPort} ssl http2;`,
  );
  site = substitute(site, 'listen [::]:443 ssl http2;', '');
  site = substitute(site, 'listen 80;', `listen 127.0.0.1:${options.httpPort};`);
  site = substitute(site, 'listen [::]:80;', '');
  site = substitute(site, '/etc/ssl/certs/backups.example.com.pem', options.certificate.cert);
  site = substitute(site, '/etc/ssl/private/backups.example.com.key', options.certificate.key);
  site = substitute(site, '/opt/customer-backups/web/dist', options.dist);
  site = substitute(site, 'server 127.0.0.1:4000;', `server 127.0.0.1:${options.apiPort};`);
  if (options.downloads) {
    site = substitute(
      site,
      'location ^~ /downloads/local/ {',
      `location ^~ /downloads/${options.downloads.node}/ {`,
    );
    site = substitute(
      site,
      'proxy_pass http://127.0.0.1:4002;',
      `proxy_pass http://127.0.0.1:${options.downloads.port};`,
    );
    if (options.downloads.dir) {
      site = substitute(
        site,
        'alias /var/lib/customer-backups/downloads/;',
        `alias ${options.downloads.dir.replace(/\/*$/, '/')};`,
      );
    }
  }
  site = substitute(
    site,
    'include /etc/nginx/snippets/customer-backups-headers.conf;',
    `include ${snippets}/customer-backups-headers.conf;`,
    6,
  );
  const siteFile = path.join(prefix, 'customer-backups.conf');
  await writeFile(siteFile, site);
  return siteFile;
}

/** The internal location of deploy/nginx/customer-backups.conf that sends archives itself. */
export const ACCEL_PREFIX = '/_customer-backups-archives/local/';

/**
 * deploy/nginx/example-customer-site.conf for one site folder on a loopback port, its
 * containers at `upstreamPort`, with the maintenance snippet and page copied beside it.
 * Returns the site file, <prefix>/customer-site.conf.
 */
export async function writeCustomerSite(
  prefix: string,
  options: { port: number; siteDir: string; upstreamPort: number },
): Promise<string> {
  const page = path.join(prefix, 'maintenance.html');
  await copyFile(path.join(DEPLOY_DIR, 'maintenance.html'), page);
  await chmod(page, 0o644);
  const snippets = await snippetsDir(prefix);
  const snippet = await readFile(path.join(NGINX_DIR, 'customer-site-maintenance.conf'), 'utf8');
  await writeFile(
    path.join(snippets, 'customer-site-maintenance.conf'),
    substitute(snippet, 'alias /opt/customer-backups/deploy/maintenance.html;', `alias ${page};`),
  );
  let site = await readFile(path.join(NGINX_DIR, 'example-customer-site.conf'), 'utf8');
  site = substitute(site, 'listen 80;', `listen 127.0.0.1:${options.port};`);
  site = substitute(site, 'listen [::]:80;', '');
  site = substitute(
    site,
    'set $customer_site_dir /var/customers/customer-42;',
    `set $customer_site_dir ${options.siteDir};`,
  );
  site = substitute(
    site,
    'include /etc/nginx/snippets/customer-site-maintenance.conf;',
    `include ${snippets}/customer-site-maintenance.conf;`,
  );
  site = substitute(
    site,
    'proxy_pass http://127.0.0.1:8080;',
    `proxy_pass http://127.0.0.1:${options.upstreamPort};`,
  );
  const siteFile = path.join(prefix, 'customer-site.conf');
  await writeFile(siteFile, site);
  return siteFile;
}

/**
 * A real nginx in the foreground (`daemon off`) with the main config `conf` under `prefix`,
 * once it accepts connections on `port`; stop() ends it (SIGTERM, then SIGKILL after 5 s).
 */
export async function runNginx(
  prefix: string,
  conf: string,
  port: number,
): Promise<{ stop(): Promise<void> }> {
  const child = spawn('/usr/sbin/nginx', ['-p', `${prefix}/`, '-c', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d) => (log += d));
  child.stderr?.on('data', (d) => (log += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited early:\n${log}`);
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return { stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen on ${port}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
