import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort } from './sandbox.js';

export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
}

export interface SmtpServer {
  url: string;
  /** Every message the server took, in order. */
  messages(): Promise<ReceivedMail[]>;
  /** Waits until `count` messages were taken. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  stop(): Promise<void>;
}

/** Starts test/support/smtp-receiver.mjs as a child process on a free loopback port. */
export async function startSmtpServer(
  dir: string,
  options: { rejectFirst?: number } = {},
): Promise<SmtpServer> {
  const port = await freePort();
  const file = path.join(dir, `smtp-${port}.jsonl`);
  const child: ResultPromise = execa(
    process.execPath,
    [
      path.join(import.meta.dirname, 'smtp-receiver.mjs'),
      String(port),
      file,
      String(options.rejectFirst ?? 0),
    ],
    { reject: false },
  );
  if (!child.stdout) throw new Error('no stdout');
  await once(child.stdout, 'data');
  const messages = async () => {
    const text = await readFile(file, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ReceivedMail);
  };
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    async waitFor(count, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const got = await messages();
        if (got.length >= count) return got;
        if (Date.now() > until) throw new Error(`${got.length} of ${count} e-mails arrived`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}
