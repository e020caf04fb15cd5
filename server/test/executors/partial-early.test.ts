// The early download of a partial restore (scripts/lib/partial.sh): the chosen paths download
// into the staging folder while the snapshot is still listed and checked. A check that fails
// after the download wrote them, or a SIGKILL while it runs, leaves the site as it was and
// no staging folder; a snapshot whose content folder is not where this server's backups put
// it is downloaded again after the checks.
import { chmod, cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositoryEnv } from '../support/sandbox.js';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  exists,
  randomCustomerId,
  run,
  snapshotEvent,
  start,
  type TestEnv,
} from './support/harness.js';
import { argFiles, entries } from './support/site-parts.js';

let t: TestEnv;
const A = randomCustomerId();
let site: string;
let content: string;
let wrapper: string;
let paths: ReturnType<typeof argFiles>['paths'];
const deep = 'wp-content-2/plugins-3/file-4.php';

beforeAll(async () => {
  t = await createTestEnv();
  site = await buildSite(t.customersRoot, A);
  content = path.join(site, 'wordpress');
  await createCustomerDatabase(A);
  const argDir = path.join(t.dataDir, 'args');
  await mkdir(argDir, { recursive: true });
  ({ paths } = argFiles(argDir));
  // restic, with its `ls` (the restore's listing) held back until WAIT_FOR exists (the early
  // download has written the chosen file), then, with LS_HANG, for good (the test kills there).
  wrapper = path.join(t.dataDir, 'restic-wrapper');
  await writeFile(
    wrapper,
    `#!/bin/bash
for a in "$@"; do
  if [ "$a" = ls ]; then
    : > "$LS_MARK"
    for i in $(seq 1 1200); do [ -s "$WAIT_FOR" ] && echo seen > "$LS_MARK" && break; sleep 0.05; done
    [ -z "$LS_HANG" ] || sleep 120
    break
  fi
done
exec restic "$@"
`,
  );
  await chmod(wrapper, 0o755);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

const restoreDir = () => path.join(t.customersRoot, '.restore', `customer-${A}`);
// Where the early download writes the chosen file (the snapshot's absolute path in staging).
const staged = (file: string) => path.join(restoreDir(), 'staging', content, file);

async function backup(env: Record<string, string> = {}): Promise<string> {
  const r = await run(t, 'customer-backup', [String(A), 'files'], env);
  expect(r.exitCode, r.stderr).toBe(0);
  return snapshotEvent(r.events)?.id ?? '';
}

/** `deep` came back as backed up; everything else of the site is as it was before. */
async function onlyDeepRestored(backedUp: Map<string, string>, before: Map<string, string>) {
  const after = await entries(content);
  expect(after.get(deep)).toBe(backedUp.get(deep));
  after.delete(deep);
  before.delete(deep);
  expect(after).toEqual(before);
  expect(await exists(restoreDir())).toBe(false);
}

/** customer-restore of `deep` alone, of customer `customer` (A unless said). */
async function restoreDeep(id: string, env: Record<string, string> = {}, customer = A) {
  return run(
    t,
    'customer-restore',
    [String(customer), id, 'files', 'manual', '--paths-from', await paths([deep])],
    env,
  );
}

describe('the early download of chosen paths', () => {
  it('a path the backup does not hold, found after the other was downloaded: exit 3, the download removed, nothing changed', async () => {
    const id = await backup();
    await writeFile(path.join(content, deep), 'edited after the backup');
    const before = await entries(content);
    const mark = path.join(t.dataDir, 'ls-started');
    const r = await run(
      t,
      'customer-restore',
      [String(A), id, 'files', 'manual', '--paths-from', await paths([deep, 'not-in-it.php'])],
      { BACKUPS_RESTIC_BIN: wrapper, LS_MARK: mark, WAIT_FOR: staged(deep) },
    );
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('PATH_NOT_FOUND');
    // the listing ran once the early download had written the chosen file
    expect(await readFile(mark, 'utf8')).toBe('seen\n');
    expect(r.events.some((e) => e.type === 'maintenance')).toBe(false);
    expect(await entries(content)).toEqual(before);
    expect(await exists(restoreDir())).toBe(false);
    await rm(mark, { force: true });
  });

  it('SIGKILL while the snapshot is listed, the chosen file downloaded: --recover removes the download, the site as it was', async () => {
    const id = await backup();
    await writeFile(path.join(content, deep), 'edited again');
    const before = await entries(content);
    const mark = path.join(t.dataDir, 'ls-started');
    const s = start(
      t,
      'customer-restore',
      [String(A), id, 'files', 'manual', '--paths-from', await paths([deep])],
      { BACKUPS_RESTIC_BIN: wrapper, LS_MARK: mark, WAIT_FOR: staged(deep), LS_HANG: '1' },
    );
    const until = Date.now() + 60_000;
    while (!(await exists(mark)) || !(await exists(staged(deep)))) {
      if (Date.now() > until || s.proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await exists(staged(deep)), 'the early download never wrote the file').toBe(true);
    // the listing hangs: killed there, the chosen file in the staging folder
    if (s.proc.pid) process.kill(-s.proc.pid, 'SIGKILL');
    await s.proc;
    expect(await readFile(path.join(restoreDir(), 'journal'), 'utf8')).toContain('STEP=prepared');
    expect(await entries(content)).toEqual(before);

    const rec = await run(t, 'customer-restore', ['--recover', String(A)]);
    expect(rec.exitCode, rec.stderr).toBe(0);
    expect(await exists(restoreDir())).toBe(false);
    expect(await entries(content)).toEqual(before);
    expect(await exists(path.join(site, '.maintenance'))).toBe(false);
    await rm(mark, { force: true });
  });

  it('the disk getting full while the snapshot is listed: the early download stops, the file is downloaded after the checks, restored', async () => {
    const id = await backup();
    const backedUp = (await entries(content)).get(deep);
    await writeFile(path.join(content, deep), 'edited once more');
    // df: plenty at the start, then (the space guard's readings) little, until the listing
    // starts after the guard's first reading; the space check then reads plenty again.
    const bin = path.join(t.dataDir, 'df-bin');
    await mkdir(bin, { recursive: true });
    const calls = path.join(t.dataDir, 'df-calls');
    const plenty = path.join(t.dataDir, 'df-plenty');
    await rm(calls, { force: true });
    await rm(plenty, { force: true });
    await writeFile(
      path.join(bin, 'df'),
      `#!/bin/bash
n=$(( $(cat "${calls}" 2>/dev/null || echo 0) + 1 )); echo $n > "${calls}"
if [ "$n" = 1 ] || [ -e "${plenty}" ]; then v=1099511627776; else v=1048576; fi
printf 'Avail\n%s\n' "$v"
`,
    );
    await chmod(path.join(bin, 'df'), 0o755);
    const waitGuard = path.join(t.dataDir, 'wait-guard');
    await writeFile(
      waitGuard,
      `#!/bin/bash
for a in "$@"; do
  if [ "$a" = ls ]; then
    for i in $(seq 1 600); do [ "$(cat "${calls}" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.05; done
    sleep 1
    : > "${plenty}"
    break
  fi
done
exec restic "$@"
`,
    );
    await chmod(waitGuard, 0o755);
    const r = await run(
      t,
      'customer-restore',
      [String(A), id, 'files', 'manual', '--paths-from', await paths([deep])],
      { PATH: `${bin}:${t.env.PATH}`, BACKUPS_RESTIC_BIN: waitGuard },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('The early download was stopped');
    expect((await entries(content)).get(deep)).toBe(backedUp);
    expect(await exists(restoreDir())).toBe(false);
  });

  // The listing a script kept (scripts/lib/snapshot-layout.sh): the index lists a snapshot
  // when the customer browses it; the restore of a path chosen there then waits for its
  // download alone.
  const listings = () => path.join(t.dataDir, 'work', 'listings');
  const logged = async () => {
    const log = path.join(t.dataDir, 'restic-commands');
    const logger = path.join(t.dataDir, 'restic-logger');
    await writeFile(logger, `#!/bin/bash\necho "$*" >> "${log}"\nexec restic "$@"\n`);
    await chmod(logger, 0o755);
    await rm(log, { force: true });
    return {
      env: { BACKUPS_RESTIC_BIN: logger },
      commands: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean),
    };
  };

  it('a snapshot the index listed: a chosen path is restored from the kept listing (no restic ls), kept root-only', async () => {
    const id = await backup();
    const backedUp = await entries(content);
    const indexed = await run(t, 'customer-index', [String(A), id, 'manual']);
    expect(indexed.exitCode, indexed.stderr).toBe(0);
    const kept = (await readdir(listings())).filter((f) => f.endsWith(`-${id}.json`));
    expect(kept).toHaveLength(1);
    expect((await stat(listings())).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(listings(), kept[0] as string))).mode & 0o077).toBe(0);
    await writeFile(path.join(content, deep), 'edited after the backup');
    const before = await entries(content);

    const restic = await logged();
    const r = await restoreDeep(id, restic.env);
    expect(r.exitCode, r.stderr).toBe(0);
    const commands = await restic.commands();
    expect(commands.some((c) => / restore /.test(c))).toBe(true);
    expect(commands.filter((c) => / ls /.test(c))).toEqual([]);
    await onlyDeepRestored(backedUp, before);
  });

  it("another customer's snapshot with a kept listing is refused, not restored", async () => {
    const id = await backup();
    expect((await run(t, 'customer-index', [String(A), id, 'manual'])).exitCode).toBe(0);
    const B = A + 1;
    await buildSite(t.customersRoot, B, 'wordpress', 'b');
    const r = await restoreDeep(id, {}, B);
    expect(r.exitCode).toBe(3);
    expect(errorCode(r.events)).toBe('SNAPSHOT_NOT_OWNED');
    await rm(path.join(t.customersRoot, `customer-${B}`), { recursive: true, force: true });
  });

  it('a kept listing of a snapshot forgotten since: the restore fails, the site as it was, nothing left', async () => {
    const id = await backup();
    expect((await run(t, 'customer-index', [String(A), id, 'manual'])).exitCode).toBe(0);
    await execa('restic', ['forget', id], { env: repositoryEnv(t.dataDir, 'manual') });
    await writeFile(path.join(content, deep), 'edited after the backup');
    const before = await entries(content);
    const r = await restoreDeep(id);
    expect(r.exitCode).not.toBe(0);
    expect(r.events.some((e) => e.type === 'maintenance')).toBe(false);
    expect(await entries(content)).toEqual(before);
    expect(await exists(restoreDir())).toBe(false);
  });

  it('a snapshot made on a server with another customers folder: downloaded again after the checks, restored', async () => {
    // The same site under another root: the snapshot's content folder is not $SITE/wordpress.
    const otherRoot = path.join(t.dataDir, 'other-root');
    await mkdir(otherRoot, { recursive: true });
    await cp(site, path.join(otherRoot, `customer-${A}`), {
      recursive: true,
      verbatimSymlinks: true,
    });
    const id = await backup({ BACKUPS_CUSTOMERS_ROOT: otherRoot });
    const backedUp = await entries(path.join(otherRoot, `customer-${A}`, 'wordpress'));
    await writeFile(path.join(content, deep), 'edited on this server');
    const before = await entries(content);

    const r = await restoreDeep(id);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('not where this server');
    await onlyDeepRestored(backedUp, before);
    await rm(otherRoot, { recursive: true, force: true });
  });
});
