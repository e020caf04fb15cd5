import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createTestEnv,
  destroyTestEnv,
  errorCode,
  listSnapshots,
  randomCustomerId,
  run,
  SCRIPTS_DIR,
  script,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();

beforeAll(async () => {
  t = await createTestEnv();
  await buildSite(t.customersRoot, A);
});
afterAll(async () => destroyTestEnv(t));

/** Everything under the scripts' work folder (locks, scratch folders, dumps). */
async function workFiles(): Promise<string[]> {
  const work = path.join(t.dataDir, 'work');
  return (await readdir(work, { recursive: true }).catch(() => [])).sort();
}

async function repoFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const kind of ['manual', 'daily']) {
    for (const sub of ['locks', 'snapshots']) {
      for (const f of await readdir(path.join(t.dataDir, 'repos', kind, sub)))
        out.push(`${kind}/${sub}/${f}`);
    }
  }
  return out.sort();
}

const bigLabel = 'x'.repeat(10_000);
const backupCases: [string, string[]][] = [
  ['customer id with a command', ['1;id', 'db']],
  ['customer id with a substitution', ['$(id)', 'db']],
  ['customer id with a path', ['../2', 'db']],
  ['an option as customer id', ['-x', 'db']],
  ['an empty customer id', ['', 'db']],
  ['a leading zero', ['0123', 'db']],
  ['unknown scope DB', [String(A), 'DB']],
  ['a 10 kB label', [String(A), 'db', '--label', bigLabel]],
  ['a label with a newline', [String(A), 'db', '--label', 'a\nb']],
  ['an unknown option', [String(A), 'db', '-x']],
  ['an unknown source', [String(A), 'db', '--source', 'weekly']],
  ['a job id with a comma', [String(A), 'db', '--job', '1,customer-2']],
];
const restoreCases: [string, string[]][] = [
  ['snapshot id zzzz', [String(A), 'zzzz', 'files', 'manual']],
  ['a too-short snapshot id', [String(A), 'abc123', 'files', 'manual']],
  ['an uppercase snapshot id', [String(A), 'ABCDEF1234', 'files', 'manual']],
  ['unknown scope DB', [String(A), 'abcdef1234', 'DB', 'manual']],
  ['unknown source', [String(A), 'abcdef1234', 'files', 'weekly']],
  ['customer id with a command', ['1;id', 'abcdef1234', 'files', 'manual']],
  ['an extra option', [String(A), 'abcdef1234', 'files', 'manual', '-x']],
  ['recover with a bad id', ['--recover', '../2']],
];

describe('argument validation', () => {
  it.each(backupCases)(
    'customer-backup refuses %s with exit 2 and no side effect',
    async (_n, args) => {
      const before = await repoFiles();
      const work = await workFiles();
      const r = await run(t, 'customer-backup', args);
      expect(r.exitCode).toBe(2);
      expect(errorCode(r.events)).toBe('INVALID_ARGUMENT');
      expect(r.events).toHaveLength(1);
      expect(await repoFiles()).toEqual(before);
      expect(await workFiles()).toEqual(work);
    },
  );

  it.each(restoreCases)(
    'customer-restore refuses %s with exit 2 and no side effect',
    async (_n, args) => {
      const before = await repoFiles();
      const work = await workFiles();
      const r = await run(t, 'customer-restore', args);
      expect(r.exitCode).toBe(2);
      expect(errorCode(r.events)).toBe('INVALID_ARGUMENT');
      expect(await repoFiles()).toEqual(before);
      expect(await workFiles()).toEqual(work);
      expect(await readdir(t.customersRoot)).not.toContain('.restore');
    },
  );

  it('backup-repository refuses unknown kinds, actions and options', async () => {
    for (const args of [
      ['weekly', 'init'],
      ['manual', 'forget'],
      ['manual', 'snapshots', '--customer', '1;id'],
      ['manual', 'check', '-x'],
      ['manual', 'check', '--read-data-subset', '5/4'],
      ['manual', 'check', '--read-data-subset', '0/4'],
      ['manual', 'check', '--read-data-subset', '1/4;id'],
      ['manual', 'snapshots', '--read-data-subset', '1/4'],
    ]) {
      const r = await run(t, 'backup-repository', args);
      expect(r.exitCode).toBe(2);
    }
    expect(await listSnapshots(t, 'manual')).toEqual([]);
  });

  it('backup-repository shards repositories by {customer}', async () => {
    const env = {
      BACKUPS_MANUAL_REPOSITORY: path.join(t.dataDir, 'repos', 'sharded-{customer}'),
      BACKUPS_MANUAL_PASSWORD_FILE: path.join(t.dataDir, 'secrets', 'sharded-{customer}.pass'),
    };
    expect((await run(t, 'backup-repository', ['manual', 'init'], env)).exitCode).toBe(2);
    const init = await run(
      t,
      'backup-repository',
      ['manual', 'init', '--customer', String(A)],
      env,
    );
    expect(init.events).toEqual([{ type: 'init', created: true }]);
    const b = await run(t, 'customer-backup', [String(A), 'files'], env);
    expect(b.exitCode, b.stderr).toBe(0);
    const snaps = await run(
      t,
      'backup-repository',
      ['manual', 'snapshots', '--customer', String(A)],
      env,
    );
    expect(snaps.events).toHaveLength(1);
    expect(snaps.events[0]).toMatchObject({
      type: 'entry',
      tags: expect.arrayContaining([`customer-${A}`]),
    });
    const check = await run(
      t,
      'backup-repository',
      ['manual', 'check', '--customer', String(A)],
      env,
    );
    expect(check.events).toEqual([{ type: 'check', ok: true }]);
  });
});

describe('lint', () => {
  it('shellcheck -x is clean on every script and library', async () => {
    const libs = (await readdir(path.join(SCRIPTS_DIR, 'lib')))
      .filter((f) => f.endsWith('.sh'))
      .map((f) => path.join(SCRIPTS_DIR, 'lib', f));
    const files = [
      script('customer-backup'),
      script('customer-restore'),
      script('customer-verify'),
      script('backup-repository'),
      script('customer-index'),
      script('customer-download'),
      ...libs,
    ];
    const r = await execa('shellcheck', ['-x', ...files], { reject: false });
    expect(r.stdout).toBe('');
    expect(r.exitCode).toBe(0);
  });
});
