// The "site's containers" of one customer in the browser tests: a tiny web server that serves
// the files of the site's content folder (read on every request, so a restored folder is served
// as soon as the site runs again). Started and stopped by BACKUPS_SITE_START/STOP_COMMAND.
// Usage: node site-server.mjs <site dir> <port> <pid file>
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

const [siteDir, portText, pidFile] = process.argv.slice(2);
if (!siteDir || !portText || !pidFile) {
  console.error('usage: site-server.mjs <site dir> <port> <pid file>');
  process.exit(2);
}
const content = path.join(siteDir, 'wordpress');

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://site.invalid');
  const relative = decodeURIComponent(url.pathname).replace(/^\/+/, '') || 'index.php';
  const file = path.resolve(content, relative);
  if (!file.startsWith(`${content}${path.sep}`)) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('bad path');
    return;
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-site-pid': process.pid });
    res.end(body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }
});

server.listen(Number(portText), '127.0.0.1', () => {
  void writeFile(pidFile, `${process.pid}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
