import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postWebhook } from '../../src/webhooks/webhook-post.js';
import { targetPolicy } from '../../src/webhooks/webhook-targets.js';
import { type Receiver, startReceiver } from './support/receiver.js';

const httpOnly = targetPolicy({
  BACKUPS_WEBHOOK_ALLOW_HTTP: true,
  BACKUPS_WEBHOOK_ALLOW_ADDRESSES: '',
});
const loopback = targetPolicy({
  BACKUPS_WEBHOOK_ALLOW_HTTP: true,
  BACKUPS_WEBHOOK_ALLOW_ADDRESSES: '127.0.0.0/8,::1/128',
});

describe('a delivery checks its target when it connects, after DNS', () => {
  let receiver: Receiver;
  let silent: http.Server;
  let silentPort: number;

  beforeAll(async () => {
    receiver = await startReceiver();
    // Takes the request and never answers.
    silent = http.createServer(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    silentPort = (silent.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await receiver?.close();
    silent?.closeAllConnections();
    silent?.close();
  });

  it('a name that resolves to loopback is refused by the socket itself: nothing reaches the receiver', async () => {
    const outcome = await postWebhook(
      `http://localhost:${receiver.port}/hook`,
      '{}',
      {},
      httpOnly,
      2_000,
    );
    expect(outcome.statusCode).toBeNull();
    expect(outcome.error).toMatch(
      /localhost resolves to (127\.0\.0\.1|::1), which is not reachable/,
    );
    const literal = await postWebhook(
      `http://127.0.0.1:${receiver.port}/hook`,
      '{}',
      {},
      httpOnly,
      2_000,
    );
    expect(literal.error).toMatch(/127\.0\.0\.1 is not reachable/);
    expect(receiver.received).toHaveLength(0);
  });

  it('with loopback allowed, the checked address is the one connected to', async () => {
    const outcome = await postWebhook(
      `http://localhost:${receiver.port}/hook`,
      '{"type":"job.started"}',
      { 'webhook-id': 'msg_1' },
      loopback,
      2_000,
    );
    expect(outcome).toMatchObject({ statusCode: 200, error: null });
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.body).toBe('{"type":"job.started"}');
    expect(receiver.received[0]?.headers['webhook-id']).toBe('msg_1');
  });

  it('an attempt that gets no answer ends at its timeout', async () => {
    const started = Date.now();
    const outcome = await postWebhook(`http://127.0.0.1:${silentPort}/`, '{}', {}, loopback, 300);
    expect(outcome).toMatchObject({ statusCode: null, error: 'no answer within 0.3 s' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
