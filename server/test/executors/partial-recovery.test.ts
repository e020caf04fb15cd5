// A partial restore killed (SIGKILL) between any two renames of its swap, or while the site
// starts: --recover leaves every chosen path and table entirely old or entirely new.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  exists,
  randomCustomerId,
  run,
  snapshotEvent,
  sql,
  start,
  type TestEnv,
} from './support/harness.js';
import { argFiles, entries, only, table, without } from './support/site-parts.js';

let t: TestEnv;
const A = randomCustomerId();
let content: string;
let bin: string;

beforeAll(async () => {
  t = await createTestEnv();
  content = path.join(await buildSite(t.customersRoot, A), 'wordpress');
  await createCustomerDatabase(A);
  // An `mv` first in PATH: the real one, then, after the KILL_AFTER_MV-th rename that names
  // the site's content folder, a mark and a long sleep (the test kills the script there).
  bin = path.join(t.dataDir, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(
    path.join(bin, 'mv'),
    `#!/bin/bash
/usr/bin/mv "$@" || exit $?
[ -n "$KILL_AFTER_MV" ] || exit 0
for a in "$@"; do case $a in "$LIVE_CONTENT"/*) n=$(( $(cat "$MV_COUNT" 2>/dev/null || echo 0) + 1 )); echo $n > "$MV_COUNT"
  if [ "$n" = "$KILL_AFTER_MV" ]; then : > "$MV_MARK"; sleep 60; fi; exit 0;; esac; done
`,
  );
  await chmod(path.join(bin, 'mv'), 0o755);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

describe('SIGKILL during a partial swap, then --recover', () => {
  it('each chosen path and table is entirely old or entirely new, the rest untouched, the site open', async () => {
    const chosen = ['wp-content-1/plugins-2', 'wp-content-2/plugins-0/file-3.php', 'wp-content-4'];
    const tables = ['posts', 'options'];
    const backup = await run(t, 'customer-backup', [String(A), 'both']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const id = snapshotEvent(backup.events)?.id ?? '';
    const neu = await entries(content);
    const newTables = await Promise.all(tables.map((x) => table(A, x)));

    // after the backup: a folder edited, a file edited, a folder deleted, rows changed
    await writeFile(path.join(content, 'wp-content-1/plugins-2/file-0.php'), 'edited');
    await writeFile(path.join(content, 'wp-content-1/plugins-2/added.php'), 'added');
    await writeFile(path.join(content, 'wp-content-2/plugins-0/file-3.php'), 'edited');
    await rm(path.join(content, 'wp-content-4'), { recursive: true });
    await sql(`INSERT INTO customer_${A}.posts (title) VALUES ('later');
      UPDATE customer_${A}.options SET value = 'later'; INSERT INTO customer_${A}.media VALUES (9, NULL)`);
    const old = await entries(content);
    const oldTables = await Promise.all(tables.map((x) => table(A, x)));
    const media = await table(A, 'media');

    const argDir = path.join(t.dataDir, 'args');
    await mkdir(argDir, { recursive: true });
    const args = argFiles(argDir);
    const pathsFrom = await args.paths(chosen);
    const tablesFrom = await args.file(`${tables.join('\n')}\n`);
    const mark = path.join(t.dataDir, 'killed-here');
    const count = path.join(t.dataDir, 'mv-count');
    const starting = path.join(t.dataDir, 'starting');
    const outcomes: string[] = [];
    // 5 renames name the live folder (two units moved aside and in, one created); then
    // the site's start, after the tables' RENAME.
    // After `completed`, the undo point is stored by --recover.
    for (const point of ['1', '2', '3', '4', '5', 'site-starting', 'completed']) {
      await rm(count, { force: true });
      const s = start(
        t,
        'customer-restore',
        [String(A), id, 'both', 'manual', '--paths-from', pathsFrom, '--tables-from', tablesFrom],
        {
          PATH: `${bin}:${t.env.PATH}`,
          LIVE_CONTENT: content,
          MV_COUNT: count,
          MV_MARK: mark,
          KILL_AFTER_MV: point === 'site-starting' ? '' : point,
          BACKUPS_SITE_START_COMMAND: `${t.env.BACKUPS_SITE_START_COMMAND}; if [ "${point}" = site-starting ]; then : > ${starting}; sleep 60; fi`,
        },
      );
      if (point === 'completed') {
        expect(await s.waitFor((e) => e.type === 'completed', 120_000)).toBe(true);
      } else {
        const waitFor = point === 'site-starting' ? starting : mark;
        const until = Date.now() + 120_000;
        while (!(await exists(waitFor)) && Date.now() < until && s.proc.exitCode === null)
          await new Promise((r) => setTimeout(r, 10));
        expect(await exists(waitFor), `never reached ${point}`).toBe(true);
      }
      if (s.proc.pid) process.kill(-s.proc.pid, 'SIGKILL');
      await s.proc;
      await rm(mark, { force: true });
      await rm(starting, { force: true });
      // killed inside the swap: the live folder was being changed
      expect(await entries(content), `the kill at ${point} was not in the swap`).not.toEqual(old);

      const rec = await run(t, 'customer-restore', ['--recover', String(A)]);
      expect(rec.exitCode, rec.stderr).toBe(0);
      const after = await entries(content);
      const states = chosen.map((c) => {
        const now = [...only(after, c)];
        if (JSON.stringify(now) === JSON.stringify([...only(old, c)])) return 'old';
        if (JSON.stringify(now) === JSON.stringify([...only(neu, c)])) return 'new';
        return 'mixed';
      });
      const tableStates = await Promise.all(
        tables.map(async (x, i) => {
          const now = await table(A, x);
          return now === oldTables[i] ? 'old' : now === newTables[i] ? 'new' : 'mixed';
        }),
      );
      outcomes.push(`${point}:${[...states, ...tableStates].join('/')}`);
      expect(states, `after a kill at ${point}`).not.toContain('mixed');
      expect(tableStates, `after a kill at ${point}`).not.toContain('mixed');
      // what was not chosen, exactly as it was
      expect(without(after, ...chosen)).toEqual(without(old, ...chosen));
      expect(await table(A, 'media')).toBe(media);
      expect(await exists(path.join(content, '..', '.maintenance'))).toBe(false);
      expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
      expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
      if (point === 'completed') {
        // switched over before the kill: all new, and --recover stored the undo point
        expect([...states, ...tableStates]).toEqual(Array(5).fill('new'));
        const undo = snapshotEvent(rec.events, 'safety') ?? snapshotEvent(s.events, 'safety');
        const back = await run(t, 'customer-restore', [
          String(A),
          undo?.id ?? '',
          'both',
          'safety',
        ]);
        expect(back.exitCode, back.stderr).toBe(0);
        expect(await entries(content)).toEqual(old);
        expect(await Promise.all(tables.map((x) => table(A, x)))).toEqual(oldTables);
      } else {
        expect([...states, ...tableStates]).toEqual(Array(5).fill('old'));
      }
    }
    console.log(`partial restore, SIGKILL outcomes: ${outcomes.join(', ')}`);
  }, 300_000);
});
