import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../infra/logger.js';
import { type JobScriptEvent, LISTING_END, parseScriptEvent } from './script-events.js';

/** Exit codes shared with the scripts (see their header comments). */
export const SCRIPT_EXIT = {
  ok: 0,
  failure: 1,
  invalidArguments: 2,
  refused: 3,
  repositoryLocked: 4,
  repositoryUnavailable: 5,
  interrupted: 6,
} as const;

export interface ScriptRunnerOptions {
  scriptsDir: string;
  /** e.g. "sudo -n" for deployments where the worker is not root; split on spaces. */
  prefix: string;
  /** Extra environment for the scripts (tests point them at their own folders). */
  env?: Record<string, string>;
  logger: Logger;
  /** Hears how the scripts' restic runs end and how long they wait for locks (metrics). */
  observer?: ScriptObserver;
}

export interface ScriptObserver {
  resticExited(command: string, code: number): void;
  waitedForLock(where: 'script', seconds: number): void;
}

export interface RunOptions {
  onEvent?: (event: JobScriptEvent) => void | Promise<void>;
  /** Every stdout line that is not a job event (listings print their own lines). */
  onLine?: (line: string) => void;
  /**
   * The lines of a listing the script passes through (after a listing event, up to the line
   * LISTING_END), as the tool printed them, in order, those read together in one call; none of
   * them is parsed as an event, and every line before an event is handed on before it. Awaited,
   * so a slow consumer slows the reading (the pipe then holds the script back), never memory.
   */
  onListing?: (lines: string[]) => void | Promise<void>;
  /** After this many ms the script gets SIGTERM (it rolls back and exits 6). */
  timeoutMs?: number;
  /** After SIGTERM, how long to wait before SIGKILL. */
  killGraceMs?: number;
  signal?: AbortSignal;
  /** The script's standard input (e.g. a list too long for its arguments); none by default. */
  input?: string;
}

export interface ScriptResult {
  exitCode: number;
  timedOut: boolean;
  aborted: boolean;
  lastError: { code: string; message: string } | null;
  stderrTail: string;
}

export class ScriptRunner {
  constructor(private readonly options: ScriptRunnerOptions) {}

  /** Runs scripts/<name> with the arguments as argv (never through a shell). */
  async run(name: string, args: readonly string[], run: RunOptions = {}): Promise<ScriptResult> {
    const script = path.join(this.options.scriptsDir, name);
    const prefix = this.options.prefix.split(' ').filter(Boolean);
    const [file, ...prefixArgs] = prefix.length ? prefix : [script];
    const argv = prefix.length ? [...prefixArgs, script, ...args] : [...args];
    const log = this.options.logger.child({ script: name, args });
    const child: ResultPromise = execa(file ?? script, argv, {
      env: this.options.env,
      extendEnv: true,
      ...(run.input === undefined ? { stdin: 'ignore' as const } : { input: run.input }),
      reject: false,
      buffer: { stdout: false, stderr: false },
      forceKillAfterDelay: run.killGraceMs ?? 60_000,
      killSignal: 'SIGTERM',
      detached: false,
    });
    let timedOut = false;
    let aborted = false;
    const stop = () => child.kill('SIGTERM');
    const timer = run.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          log.warn({ timeoutMs: run.timeoutMs }, 'script timed out: SIGTERM');
          stop();
        }, run.timeoutMs)
      : undefined;
    const onAbort = () => {
      aborted = true;
      stop();
    };
    run.signal?.addEventListener('abort', onAbort, { once: true });

    let lastError: ScriptResult['lastError'] = null;
    let stderrTail = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
      for (const line of chunk.split('\n'))
        if (line.trim()) log.debug({ stderr: line }, 'script log');
    });
    const events = (async () => {
      const stdout = child.stdout;
      if (!stdout) return;
      stdout.setEncoding('utf8');
      let listing = false;
      /** The listing's lines read since the last event, handed on together. */
      let listed: string[] = [];
      const passListed = async () => {
        if (listed.length === 0) return;
        const lines = listed;
        listed = [];
        if (!run.onListing) return;
        try {
          await run.onListing(lines);
        } catch (error) {
          log.error({ err: error }, 'handling listing lines failed');
        }
      };
      const handle = async (line: string) => {
        // Inside a listing, only a line that starts as an event does is read as one (restic's
        // own lines start with {"name":); the others are the listing's, passed on unparsed.
        const event = !listing || line.startsWith('{"type":"') ? parseScriptEvent(line) : null;
        if (listing && !event) {
          if (line === LISTING_END) {
            listing = false;
            await passListed();
          } else listed.push(line);
          return;
        }
        await passListed();
        if (!event) {
          if (!line.trim()) return;
          if (run.onLine) {
            try {
              run.onLine(line);
            } catch (error) {
              log.warn({ err: error, line: line.slice(0, 200) }, 'an unreadable line');
            }
          } else log.warn({ line: line.slice(0, 200) }, 'script printed a non-event line');
          return;
        }
        if (event.type === 'restic') {
          this.options.observer?.resticExited(event.command, event.code);
          return;
        }
        if (event.type === 'listing') listing = true;
        if (event.type === 'lock_wait') {
          this.options.observer?.waitedForLock('script', event.seconds);
          return;
        }
        if (event.type === 'error') lastError = { code: event.code, message: event.message };
        try {
          await run.onEvent?.(event);
        } catch (error) {
          log.error({ err: error }, 'handling a script event failed');
        }
      };
      // Lines split here rather than by readline: a listing of 20,000 lines is handed on in a
      // few hundred calls (one a chunk read) instead of one awaited call and iteration a line,
      // most of the worker's time for an index. Lines end with \n (a \r before it is dropped).
      let rest = '';
      for await (const chunk of stdout as AsyncIterable<string>) {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) await handle(line.endsWith('\r') ? line.slice(0, -1) : line);
        await passListed();
      }
      if (rest) await handle(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
      await passListed();
    })();
    const result = await child;
    await events;
    if (timer) clearTimeout(timer);
    run.signal?.removeEventListener('abort', onAbort);
    const exitCode = typeof result.exitCode === 'number' ? result.exitCode : 128 + 9;
    return { exitCode, timedOut, aborted, lastError, stderrTail };
  }
}

/**
 * Puts a customer's site back in order after a restore was interrupted (entirely old or
 * entirely new, maintenance off, site started); does nothing when nothing is wrong.
 */
export function recoverSite(
  scripts: ScriptRunner,
  customerId: number,
  onEvent?: RunOptions['onEvent'],
): Promise<ScriptResult> {
  return scripts.run('customer-restore', ['--recover', String(customerId)], {
    timeoutMs: 30 * 60_000,
    onEvent,
  });
}
