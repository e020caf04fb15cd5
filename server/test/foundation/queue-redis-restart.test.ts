// A queue whose Redis stops and starts again (found by the chaos soak: the api, the CLI and
// the chaos run's own producer ended with an unhandled 'error' event the moment Redis went
// away). A Redis server of the test's own on a free port, so it can be stopped.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueJob, QueueRegistry } from '../../src/jobs/job-queue.js';
import { deliveryQueues } from '../../src/webhooks/webhook-queue.js';
import { freePort } from '../support/sandbox.js';

let dir: string;
let port: number;
let server: ChildProcess | undefined;

async function startRedis(): Promise<void> {
  server = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(s.destroy() && true));
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not start');
}

async function stopRedis(): Promise<void> {
  if (!server || server.exitCode !== null) return;
  const ended = once(server, 'exit');
  server.kill('SIGTERM');
  await ended;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'backups-queue-redis-'));
  port = await freePort();
  await startRedis();
});

afterAll(async () => {
  await stopRedis();
  await rm(dir, { recursive: true, force: true });
});

describe('a producer queue when Redis stops', () => {
  it('reports the lost connection instead of ending the process, and queues again once Redis is back', async () => {
    const redisUrl = `redis://127.0.0.1:${port}/0`;
    const errors: Error[] = [];
    const options = { redisUrl, prefix: 'q', onError: (e: Error) => errors.push(e) };
    const queues = new QueueRegistry(options);
    const deliveries = deliveryQueues(options);
    try {
      const queue = queues.for('node-a');
      await enqueueJob(queue, 1);
      // a webhook producer queue is made on its first delivery
      await deliveries.enqueue([{ id: 7, node: 'node-a' }]);
      const uncaught: unknown[] = [];
      const onUncaught = (e: unknown) => uncaught.push(e);
      process.on('uncaughtException', onUncaught);
      try {
        await stopRedis();
        const until = Date.now() + 10_000;
        while (errors.length === 0 && Date.now() < until)
          await new Promise((r) => setTimeout(r, 100));
        expect(errors.length).toBeGreaterThan(0);
        await startRedis();
        // the queue reconnects by itself: the next job is queued
        let queued = false;
        for (let i = 0; i < 50 && !queued; i++) {
          queued = await enqueueJob(queue, 2).then(
            () => true,
            () => false,
          );
          if (!queued) await new Promise((r) => setTimeout(r, 200));
        }
        expect(queued).toBe(true);
      } finally {
        process.off('uncaughtException', onUncaught);
      }
      expect(uncaught).toEqual([]);
      const redis = new Redis(redisUrl);
      try {
        expect(await redis.hexists('q:jobs-node-a:jobs', '1')).toBe(1);
        expect(await redis.hexists('q:jobs-node-a:jobs', '2')).toBe(1);
      } finally {
        redis.disconnect();
      }
    } finally {
      await queues.close();
      await deliveries.close();
    }
  });
});
