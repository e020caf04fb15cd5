import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../infra/logger.js';
import type { JobScriptEvent } from './script-events.js';
import { ScriptRunner } from './script-runner.js';

let dir: string;
const node = (name: string) =>
  JSON.stringify({ name, type: 'file', path: `/site/wordpress/${name}`, struct_type: 'node' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'script-runner-'));
  // A listing as customer-index passes restic's lines on: an event among them, and a line
  // that looks like an event but is none (a node whose name starts the same way).
  await writeFile(
    path.join(dir, 'lister'),
    `#!/usr/bin/env bash
printf '%s\\n' '{"type":"listing","roots":["/site/wordpress"],"estimate":3}'
printf '%s\\n' '${node('a.txt')}'
printf '%s\\n' '{"type":"phase","phase":"LISTING"}'
printf '%s\\n' '{"type":"file","path":"/site/wordpress/b.txt","struct_type":"node"}'
printf '%s\\n' '${node('c.txt')}'
printf '%s\\n' '{"type":"listing_end"}'
printf '%s\\n' '{"type":"completed"}'
`,
  );
  await chmod(path.join(dir, 'lister'), 0o755);
  // A long listing (many reads of the pipe, names of several UTF-8 bytes cut by them), with an
  // event after the first 10,000 lines.
  await writeFile(
    path.join(dir, 'long-lister'),
    `#!/usr/bin/env bash
printf '%s\n' '{"type":"listing","roots":["/site/wordpress"],"estimate":20000}'
for ((i = 0; i < 20000; i++)); do
  ((i != 10000)) || printf '%s\n' '{"type":"phase","phase":"LISTING"}'
  printf '{"name":"f\u00fc\u65e5%d","path":"/site/wordpress/f\u00fc\u65e5-%d","struct_type":"node"}\n' "$i" "$i"
done
printf '%s\n' '{"type":"listing_end"}'
printf '%s\n' '{"type":"completed"}'
`,
  );
  await chmod(path.join(dir, 'long-lister'), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('script runner', () => {
  it("hands a listing's lines on unparsed, in order, and still reads the events among them", async () => {
    const runner = new ScriptRunner({
      scriptsDir: dir,
      prefix: '',
      logger: createLogger('runner-test', 'silent'),
    });
    const events: JobScriptEvent[] = [];
    const listed: string[] = [];
    const result = await runner.run('lister', [], {
      onEvent: (event) => void events.push(event),
      onListing: async (lines) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        listed.push(...lines);
      },
    });
    expect(result.exitCode).toBe(0);
    expect(listed).toEqual([
      node('a.txt'),
      '{"type":"file","path":"/site/wordpress/b.txt","struct_type":"node"}',
      node('c.txt'),
    ]);
    expect(events.map((e) => e.type)).toEqual(['listing', 'phase', 'completed']);
  });

  it('hands a long listing on whole and in order, each line before the event after it', async () => {
    const runner = new ScriptRunner({
      scriptsDir: dir,
      prefix: '',
      logger: createLogger('runner-test', 'silent'),
    });
    const listed: string[] = [];
    const seenAt: Record<string, number> = {};
    const result = await runner.run('long-lister', [], {
      onEvent: (event) => {
        seenAt[event.type] = listed.length;
      },
      onListing: (lines) => {
        listed.push(...lines);
      },
    });
    expect(result.exitCode).toBe(0);
    expect(listed).toHaveLength(20000);
    listed.forEach((line, i) => {
      expect(JSON.parse(line)).toEqual({
        name: `f\u00fc\u65e5${i}`,
        path: `/site/wordpress/f\u00fc\u65e5-${i}`,
        struct_type: 'node',
      });
    });
    expect(seenAt).toEqual({ listing: 0, phase: 10000, completed: 20000 });
  });
});
