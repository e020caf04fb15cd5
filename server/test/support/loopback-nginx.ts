import { once } from 'node:events';
import net from 'node:net';

/**
 * Helpers for running the shipped deploy/nginx files on loopback in tests (the deploy tests
 * and the browser tests both do).
 */

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
