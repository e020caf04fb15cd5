import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function send(res: ServerResponse, file: string, head: boolean, cache: string): void {
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'cache-control': cache,
    'x-content-type-options': 'nosniff',
  });
  if (head) res.end();
  else createReadStream(file).pipe(res);
}

/**
 * The built single-page app: its files, and index.html for any other page path (the app
 * routes in the browser). Nothing outside the folder is ever served.
 */
export function serveWebApp(req: IncomingMessage, res: ServerResponse, webDir: string): void {
  const method = req.method ?? 'GET';
  const index = path.join(webDir, 'index.html');
  if ((method !== 'GET' && method !== 'HEAD') || !existsSync(index)) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n');
    return;
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const root = path.resolve(webDir);
  const file = path.resolve(root, `.${path.posix.normalize(pathname)}`);
  if (file.startsWith(root + path.sep) && isFile(file)) {
    const hashed = file.startsWith(path.join(root, 'assets') + path.sep);
    send(res, file, method === 'HEAD', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    return;
  }
  if (path.extname(pathname) !== '') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n');
    return;
  }
  send(res, index, method === 'HEAD', 'no-cache');
}
