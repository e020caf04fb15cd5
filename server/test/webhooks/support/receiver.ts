import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EntityManager } from '@mikro-orm/mariadb';
import { Webhook } from 'standardwebhooks';
import type { Config } from '../../../src/config/config.js';
import type { ICustomer } from '../../../src/customers/customer.entity.js';
import { createWebhook } from '../../../src/webhooks/webhooks.js';

/**
 * A worker's configuration for receivers on loopback over http, retries in fractions of a
 * second (the third waits 3 s). The api needs the same key to make hooks.
 */
export const LOOPBACK_HOOKS = {
  BACKUPS_WEBHOOK_KEY: randomBytes(32).toString('hex'),
  BACKUPS_WEBHOOK_ALLOW_HTTP: 'true',
  BACKUPS_WEBHOOK_ALLOW_ADDRESSES: '127.0.0.0/8',
  BACKUPS_WEBHOOK_RETRY_SECONDS: '0.2,0.2,3,0.2',
  BACKUPS_WEBHOOK_TIMEOUT_SECONDS: '2',
  BACKUPS_WEBHOOK_SWEEP_SECONDS: '0.5',
};

/**
 * The customer's own hook to `receiver` for `events`, made as their API token would make it
 * (createWebhook, every check included); the receiver learns its secret.
 */
export async function hookFor(
  em: EntityManager,
  config: Config,
  customer: ICustomer,
  receiver: Receiver,
  events: string[],
): Promise<void> {
  const viewer = { kind: 'token' as const, customerId: customer.id, tokenId: 0 };
  const { secret } = await createWebhook(em, config, viewer, { url: receiver.url, events });
  receiver.secret = secret;
}

export interface Received {
  headers: Record<string, string>;
  body: string;
  /** The payload when its signature verified with the hook's secret (the spec's library). */
  verified: {
    type: string;
    data: { job: Record<string, unknown> } & Record<string, Record<string, unknown>>;
  } | null;
  /** Why it did not verify. */
  problem: string | null;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** The hook's secret, once known (createWebhook shows it). */
  secret: string | null;
  /** Waits until `count` requests arrived (event-driven). */
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A webhook receiver as an integrator writes one: node:http on loopback, every request
 * verified with the Standard Webhooks library. `answer(n)` picks the status of the n-th request
 * (1-based); 200 by default, a [status, location] pair answers a redirect.
 */
export async function startReceiver(
  options: { port?: number; answer?: (n: number) => number | [number, string] } = {},
): Promise<Receiver> {
  const received: Received[] = [];
  const arrivals = new EventTarget();
  const receiver: Receiver = {
    url: '',
    port: 0,
    received,
    secret: null,
    async waitFor(count) {
      while (received.length < count) await once(arrivals, 'request');
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [
          k,
          Array.isArray(v) ? v.join(',') : (v ?? ''),
        ]),
      );
      let verified: Received['verified'] = null;
      let problem: string | null = null;
      try {
        if (!receiver.secret) throw new Error('no secret yet');
        verified = new Webhook(receiver.secret).verify(body, headers) as Received['verified'];
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      received.push({ headers, body, verified, problem });
      const answer = options.answer?.(received.length) ?? 200;
      const [status, location] = Array.isArray(answer) ? answer : [answer, undefined];
      res.writeHead(status, location ? { location } : {});
      res.end('ok');
      arrivals.dispatchEvent(new Event('request'));
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks/backups`;
  return receiver;
}
