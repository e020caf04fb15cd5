import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, freePort, type TestDatabase } from '../support/sandbox.js';
import { scrape } from '../support/server-process.js';

const serverDir = path.resolve(import.meta.dirname, '../..');

// The api processes the primary forked (not, say, the esbuild service tsx may start).
const children = async (pid: number) =>
  (await execa('pgrep', ['-P', String(pid), '-f', 'src/main/api.ts'], { reject: false })).stdout
    .split('\n')
    .filter(Boolean)
    .map(Number);

let apiStderr = '';
let api: ResultPromise;

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) {
      const tree = (
        await execa('ps', ['-o', 'pid,ppid,args', '--ppid', String(api.pid ?? 0)], {
          reject: false,
        })
      ).stdout;
      throw new Error(
        `timed out waiting for ${what}; the api's children:\n${tree}\nit said: ${apiStderr.slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// BACKUPS_API_PROCESSES=2: one port, two whole api processes (node:cluster), each with its own
// pools; a process that dies is replaced; SIGTERM stops them all.
describe('several api processes behind one port', () => {
  let db: TestDatabase;
  let dataDir: string;
  let port: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(tmpdir(), 'api-processes-'));
    port = await freePort();
    api = execa('node', ['--import', 'tsx', 'src/main/api.ts'], {
      cwd: serverDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dataDir,
        BACKUPS_ENV_FILE: path.join(dataDir, 'none.env'),
        BACKUPS_DATA_DIR: dataDir,
        BACKUPS_DB_NAME: db.name,
        BACKUPS_REDIS_PREFIX: `t${path.basename(dataDir).replace(/[^A-Za-z0-9]/g, '')}`,
        BACKUPS_API_PORT: String(port),
        BACKUPS_API_PROCESSES: '2',
        BACKUPS_LOG_LEVEL: 'warn',
      },
      extendEnv: false,
      reject: false,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    api.stderr?.on('data', (chunk: Buffer) => {
      apiStderr += chunk.toString();
    });
  });
  afterAll(async () => {
    if (api.exitCode === null) api.kill('SIGKILL');
    for (const pid of await children(api.pid ?? 0)) process.kill(pid, 'SIGKILL');
    await api;
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const query = async () => {
    const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-graphql-yoga-csrf': '1' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    return { status: response.status, body: await response.json() };
  };

  it('serves from two processes, replaces one that dies, and stops them all on SIGTERM', async () => {
    const pid = api.pid ?? 0;
    const first = await until('two api processes', async () => {
      const pids = await children(pid);
      return pids.length === 2 ? pids : undefined;
    });
    await until('the api to answer', async () =>
      (await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined,
    );
    // Twenty requests over new connections: every one answered, nobody signed in.
    for (let i = 0; i < 20; i++) {
      expect(await query()).toEqual({ status: 200, body: { data: { me: null } } });
    }
    // /metrics, whichever process answers, counts the requests of both.
    for (let i = 0; i < 4; i++) {
      const metrics = await scrape(`http://127.0.0.1:${port}/metrics`);
      expect(
        metrics.value('backups_api_http_requests_total', { route: 'graphql', status: '200' }),
      ).toBe(20);
      expect(
        metrics.value('backups_api_graphql_operations_total', { type: 'query', field: 'me' }),
      ).toBe(20);
    }

    process.kill(first[0] ?? 0, 'SIGKILL');
    const replaced = await until('a new api process', async () => {
      const pids = await children(pid);
      return pids.length === 2 && !pids.includes(first[0] ?? 0) ? pids : undefined;
    });
    expect(replaced).toContain(first[1]);
    // While the replacement starts (it has no metrics yet), /metrics answers (scrape throws on
    // anything but 200) with the survivor's counts: the requests it served of the 20 (none, if
    // the other took them all while it was still starting).
    const during = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(
      during.value('backups_api_http_requests_total', { route: 'graphql', status: '200' }) ?? 0,
    ).toBeLessThanOrEqual(20);
    await until('the new process to answer', async () => {
      for (let i = 0; i < 10; i++) if ((await query()).status !== 200) return undefined;
      return true;
    });

    api.kill('SIGTERM');
    const ended = await api;
    expect(ended.exitCode).toBe(0);
    for (const child of replaced) {
      expect(
        (await execa('kill', ['-0', String(child)], { reject: false })).exitCode,
        `api process ${child} still running`,
      ).not.toBe(0);
    }
  }, 300_000);
});
