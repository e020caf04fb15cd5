/**
 * The api or the worker as a real process (`node --import tsx src/main/<role>.ts`), as systemd
 * runs them, with only the environment it is given. Its output is kept for the failure message.
 */
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';

const serverDir = path.resolve(import.meta.dirname, '../..');

export interface ServerProcess {
  child: ResultPromise;
  output(): string;
  /** Polls `probe` until it answers true; fails with the process's output if it exits first. */
  until(what: string, probe: () => Promise<boolean>, ms?: number): Promise<void>;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | undefined>;
}

export function startServerProcess(
  role: 'api' | 'worker',
  env: Record<string, string>,
): ServerProcess {
  let output = '';
  const child = execa('node', ['--import', 'tsx', `src/main/${role}.ts`], {
    cwd: serverDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', BACKUPS_LOG_LEVEL: 'warn', ...env },
    extendEnv: false,
    reject: false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    output: () => output,
    async until(what, probe, ms = 60_000) {
      const end = Date.now() + ms;
      for (;;) {
        if (await probe().catch(() => false)) return;
        if (exited() || Date.now() > end) {
          throw new Error(`${role}: ${what} did not happen; it said:\n${output.slice(-3000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      if (!exited()) child.kill('SIGTERM');
      const result = await child;
      return result.exitCode;
    },
  };
}

/** One Prometheus text exposition, read as a scraper would. */
export interface Scrape {
  /** Metric names declared with # TYPE (what the process exports, samples or not). */
  names: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
  /** The value of the one sample with these labels (among others); undefined if none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  const text = await response.text();
  const names = new Map<string, string>();
  const samples: Scrape['samples'] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type?.[1] && type[2]) names.set(type[1], type[2]);
    if (line.startsWith('#') || line.trim() === '') continue;
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!sample?.[1] || !sample[3]) continue;
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      if (m[1]) labels[m[1]] = m[2] ?? '';
    }
    samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return {
    names,
    samples,
    value(name, labels = {}) {
      const found = samples.filter(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      );
      if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: several samples`);
      return found[0]?.value;
    },
  };
}
