// The worker's stalled-jobs check after a Redis restart (found by the chaos soak: the worker
// ended by itself twice, "NOSCRIPT No matching script" from Bee-Queue's interval stall check,
// a rejected promise nobody handled). A restarted Redis has lost the queue's Lua scripts; here
// they are flushed (SCRIPT FLUSH) on a Redis server of the test's own, never the system one.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStallChecks, workerQueue } from '../../src/jobs/job-queue.js';
import { freePort } from '../support/sandbox.js';

// Bee-Queue's script shas (it calls its scripts by them)
const beeLua = createRequire(import.meta.url)('bee-queue/lib/lua/index.js') as {
  shas: Record<string, string>;
};

let dir: string;
let port: number;
let server: ChildProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'backups-stall-check-'));
  port = await freePort();
  server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
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
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const ended = once(server, 'exit');
    server.kill('SIGTERM');
    await ended;
  }
  await rm(dir, { recursive: true, force: true });
});

describe("the stalled-jobs check when Redis has lost the queue's scripts", () => {
  it('loads them again and goes on checking, with no unhandled rejection', async () => {
    const redisUrl = `redis://127.0.0.1:${port}/0`;
    const queue = workerQueue({ redisUrl, prefix: 's' }, 'node-s');
    const admin = new Redis(redisUrl);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const errors: unknown[] = [];
    try {
      await queue.ready();
      const scripts = async () =>
        (await admin.call('SCRIPT', 'EXISTS', ...Object.values(beeLua.shas))) as number[];
      expect((await scripts()).every((x) => x === 1)).toBe(true);
      await admin.call('SCRIPT', 'FLUSH');
      expect((await scripts()).every((x) => x === 0)).toBe(true);
      const checks = startStallChecks([queue], 200, (e) => errors.push(e));
      try {
        // a few checks: the first meets NOSCRIPT, loads the scripts and checks again
        await new Promise((r) => setTimeout(r, 1500));
      } finally {
        checks.stop();
      }
      expect((await scripts()).every((x) => x === 1)).toBe(true);
      expect(errors).toEqual([]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      admin.disconnect();
      await queue.close(2000);
    }
  });
});
