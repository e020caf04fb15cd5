import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthChecks {
  /** Liveness: the process is up. */
  live(): boolean;
  /** Readiness: the database, Redis and the queue answer. */
  ready(): Promise<boolean>;
  metrics(): Promise<{ contentType: string; body: string }>;
}

/** /healthz, /readyz and /metrics on a loopback port (scraped by Prometheus). */
export async function startHealthServer(
  host: string,
  port: number,
  checks: HealthChecks,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.url === '/healthz') {
          res.writeHead(checks.live() ? 200 : 503, { 'content-type': 'text/plain' });
          res.end(checks.live() ? 'ok\n' : 'stopping\n');
        } else if (req.url === '/readyz') {
          const ok = await checks.ready();
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
          res.end(ok ? 'ready\n' : 'not ready\n');
        } else if (req.url === '/metrics') {
          const { contentType, body } = await checks.metrics();
          res.writeHead(200, { 'content-type': contentType });
          res.end(body);
        } else {
          res.writeHead(404).end();
        }
      } catch {
        if (!res.headersSent) res.writeHead(503);
        res.end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return { server, port: (server.address() as AddressInfo).port };
}
