// The chaos run's own servers, each a child process it can stop and start as a fault: a
// mariadbd on a data folder made by mariadb-install-db (its own port and socket), a
// redis-server (its own port, append-only file, so a clean stop loses nothing), the
// repository servers (server/test/support/repository-servers.ts), a small tmpfs for the
// staging folder, nginx in front of the customer sites, and the api and the worker (the
// JavaScript tsc builds, as in production). The system MariaDB and Redis are never touched.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { freePort } from '../../server/test/support/sandbox.js';

export type Log = (line: string) => void;

export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`process ended before it listened on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listened on ${port} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A server child that can be killed and started again with the same arguments. `ready`
 * says when a start is done (default: the port accepts connections).
 */
export class Child {
  private child: ChildProcess | undefined;
  private tail = '';
  /** Called with every line the child writes (stdout and stderr). */
  onLine: ((line: string) => void) | undefined;
  /** Called when the child ends without stop() being asked for. */
  onExit: ((code: number | null, signal: string | null) => void) | undefined;
  private stopping = false;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly options: {
      env?: Record<string, string>;
      cwd?: string;
      port?: number;
      ready?: () => Promise<boolean>;
      startTimeoutMs?: number;
    } = {},
  ) {}

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    const c = this.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  get log(): string {
    return this.tail.slice(-3000);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.stopping = false;
    const child = spawn(this.command, this.args, {
      env: this.options.env ?? (process.env as Record<string, string>),
      cwd: this.options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const feed = (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.tail = `${this.tail}${line}\n`.slice(-20_000);
        this.onLine?.(line);
      }
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
    child.once('exit', (code, signal) => {
      if (!this.stopping) this.onExit?.(code, signal);
    });
    this.child = child;
    const until = Date.now() + (this.options.startTimeoutMs ?? 60_000);
    if (this.options.port) {
      await waitForPort(
        this.options.port,
        this.options.startTimeoutMs ?? 60_000,
        () => this.running,
      ).catch((error: Error) => {
        throw new Error(`${this.name}: ${error.message}: ${this.log}`);
      });
    }
    if (this.options.ready) {
      for (;;) {
        if (!this.running) throw new Error(`${this.name} ended at start: ${this.log}`);
        if (await this.options.ready().catch(() => false)) break;
        if (Date.now() > until) throw new Error(`${this.name} not ready: ${this.log}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Ends it with `signal` (SIGKILL: a crash) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    this.stopping = true;
    const ended = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await ended;
    clearTimeout(timer);
  }
}

// --- MariaDB -----------------------------------------------------------------------------------

export interface MariaDb {
  child: Child;
  port: number;
  socket: string;
  /** Root statements on this server (tab-separated rows). */
  sql(statement: string, database?: string): Promise<string>;
}

export async function startMariaDb(dir: string): Promise<MariaDb> {
  const dataDir = path.join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const socket = path.join(dir, 'mysqld.sock');
  const port = await freePort();
  await execa('mariadb-install-db', [
    '--no-defaults',
    `--datadir=${dataDir}`,
    '--user=root',
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
  ]);
  const sql = async (statement: string, database?: string) => {
    const args = ['--no-defaults', `--socket=${socket}`, '-uroot', '-N', '-B'];
    if (database) args.push(database);
    return (await execa('mariadb', [...args, '-e', statement])).stdout;
  };
  const child = new Child(
    'mariadbd',
    '/usr/sbin/mariadbd',
    [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--user=root',
      `--pid-file=${path.join(dir, 'mysqld.pid')}`,
      '--innodb-buffer-pool-size=96M',
      '--innodb-log-file-size=32M',
      '--performance-schema=OFF',
      '--skip-log-bin',
      '--max-connections=300',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
    ],
    { port, ready: () => sql('select 1').then(() => true), startTimeoutMs: 120_000 },
  );
  await child.start();
  // the api and the worker connect over TCP as root without a password
  await sql(
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;",
  );
  return { child, port, socket, sql };
}

// --- Redis -------------------------------------------------------------------------------------

export async function startRedis(
  dir: string,
): Promise<{ child: Child; port: number; url: string }> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const child = new Child(
    'redis-server',
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
      '--appendfsync',
      'everysec',
      '--daemonize',
      'no',
    ],
    { port },
  );
  await child.start();
  return { child, port, url: `redis://127.0.0.1:${port}/0` };
}

// --- the staging filesystem --------------------------------------------------------------------

/** A tmpfs of `mb` MiB at `dir` (the scripts' work folder): fill() makes it full, free() not. */
export async function mountStaging(dir: string, mb: number) {
  await mkdir(dir, { recursive: true });
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${mb}m,mode=0700`, 'chaos-staging', dir]);
  const filler = path.join(dir, '.chaos-filler');
  return {
    dir,
    async fill() {
      const avail = Number(
        (await execa('df', ['-B1', '--output=avail', dir])).stdout.split('\n')[1]?.trim() ?? 0,
      );
      // dd rather than fallocate: the tmpfs has to be really full
      await execa(
        'dd',
        ['if=/dev/zero', `of=${filler}`, 'bs=1M', `count=${Math.ceil(avail / 2 ** 20) + 1}`],
        {
          reject: false,
        },
      );
    },
    async free() {
      await execa('rm', ['-f', filler]);
    },
    async unmount() {
      await execa('umount', ['-l', dir], { reject: false });
    },
  };
}

// --- process trees -----------------------------------------------------------------------------

/** Every descendant of `pid` with its command name (from /proc). */
export async function descendants(pid: number): Promise<{ pid: number; comm: string }[]> {
  const parents = new Map<number, number[]>();
  const comms = new Map<number, string>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const m = /^(\d+) \((.*)\) \S (\d+)/.exec(stat);
    if (!m) continue;
    const child = Number(m[1]);
    const parent = Number(m[3]);
    comms.set(child, m[2] ?? '');
    const list = parents.get(parent) ?? [];
    list.push(child);
    parents.set(parent, list);
  }
  const out: { pid: number; comm: string }[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const c of parents.get(p) ?? []) {
      out.push({ pid: c, comm: comms.get(c) ?? '' });
      queue.push(c);
    }
  }
  return out;
}
