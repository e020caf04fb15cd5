import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RepositoryHost, repositoryHost } from '../support/repository-servers.js';
import {
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  randomCustomerId,
  run,
  type TestEnv,
} from './support/harness.js';

// A hosting node broken into: its root holds the worker's rest-server credentials, which are
// append-only. Everything it could try to destroy the backups with is refused, and the
// maintainer's credentials still apply retention.
describe('a node with append-only credentials cannot destroy its backups', () => {
  let host: RepositoryHost;
  let t: TestEnv;
  const customer = randomCustomerId();
  let ids: string[] = [];

  const restic = (access: 'node' | 'maintainer', args: string[]) =>
    execa('restic', [...host[access].resticArgs, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...host[access].resticEnv('manual') },
      extendEnv: false,
      reject: false,
    });
  const snapshotIds = async (access: 'node' | 'maintainer') => {
    const r = await restic(access, ['snapshots', '--json', '--tag', `customer-${customer}`]);
    expect(r.exitCode, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id).sort();
  };
  /** A raw request with the node's credentials, as an attacker with curl would send it. */
  const raw = async (method: string, repoPath: string) => {
    const rest = host.rest;
    if (!rest) throw new Error('no rest server');
    const r = await execa(
      'curl',
      [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        rest.ca.caCert,
        '-u',
        `${rest.nodeUser}:${rest.nodePassword}`,
        '-X',
        method,
        rest.node.url(repoPath),
      ],
      { reject: false },
    );
    return Number(r.stdout);
  };
  const listed = async (type: 'data' | 'snapshots') => {
    const rest = host.rest;
    if (!rest) throw new Error('no rest server');
    const r = await execa('curl', [
      '-sS',
      '--cacert',
      rest.ca.caCert,
      '-u',
      `${rest.nodeUser}:${rest.nodePassword}`,
      '-H',
      'Accept: application/vnd.x.restic.rest.v2',
      rest.node.url(`${rest.nodeUser}/manual/${type}/`),
    ]);
    return (JSON.parse(r.stdout) as { name: string }[]).map((e) => e.name);
  };

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'append-only-'));
    host = await repositoryHost('rest', dir, { appendOnly: true });
    t = await createTestEnv({ ...host.node.env, BACKUPS_MANUAL_KEEP: '2' }, { dir });
    await createCustomerDatabase(customer);
    for (let i = 0; i < 3; i++) {
      const r = await run(t, 'customer-backup', [String(customer), 'db']);
      expect(r.exitCode, r.stderr).toBe(0);
      // the node keeps every snapshot: its retention is the maintainer's
      expect(r.events.find((e) => e.type === 'retention')).toMatchObject({
        removed: [],
        appendOnly: true,
      });
    }
    ids = await snapshotIds('node');
  });
  afterAll(async () => {
    await dropCustomerDatabases(customer);
    await host?.destroy();
    await destroyTestEnv(t);
  });

  it('restic forget, prune and key remove with the node credentials are all refused', async () => {
    expect(ids).toHaveLength(3);
    const forget = await restic('node', ['forget', '--keep-last', '1', '--prune']);
    expect(forget.exitCode).not.toBe(0);
    // restic exits 0 here although the server refused every DELETE (403): the node's own
    // retention would look successful, which is why append-only nodes never run it.
    const forgetOne = await restic('node', ['forget', ids[0] ?? '']);
    expect(forgetOne.stderr).toMatch(/403 Forbidden/);
    expect(forgetOne.stderr).toMatch(/unable to remove snapshot/);
    const packs = (await listed('data')).sort();
    const prune = await restic('node', ['prune', '--max-unused', '0']);
    expect(prune.exitCode === 0 || /403/.test(prune.stderr)).toBe(true);
    expect((await listed('data')).sort()).toEqual(packs);

    // a second key the attacker adds (adding is what append-only allows) cannot be removed
    const added = await restic('node', [
      'key',
      'add',
      '--new-password-file',
      host.node.resticEnv('manual').RESTIC_PASSWORD_FILE ?? '',
    ]);
    expect(added.exitCode, added.stderr).toBe(0);
    const keys = await restic('node', ['key', 'list', '--json']);
    const others = (JSON.parse(keys.stdout) as { id: string; current: boolean }[]).filter(
      (k) => !k.current,
    );
    expect(others).toHaveLength(1);
    const removeKey = await restic('node', ['key', 'remove', others[0]?.id ?? '']);
    expect(removeKey.exitCode).not.toBe(0);
    expect((await restic('node', ['key', 'list', '--json'])).stdout).toContain(others[0]?.id);

    expect(await snapshotIds('node')).toEqual(ids);
    expect(await snapshotIds('maintainer')).toEqual(ids);
  });

  it('raw HTTP DELETEs of snapshot, pack, key and config files are refused (403)', async () => {
    const rest = host.rest;
    if (!rest) throw new Error('no rest server');
    const repo = `${rest.nodeUser}/manual`;
    const snapshots = await listed('snapshots');
    const packs = await listed('data');
    expect(snapshots).toHaveLength(3);
    expect(packs.length).toBeGreaterThan(0);
    for (const name of snapshots)
      expect(await raw('DELETE', `${repo}/snapshots/${name}`)).toBe(403);
    for (const name of packs.slice(0, 5))
      expect(await raw('DELETE', `${repo}/data/${name}`)).toBe(403);
    expect(await raw('DELETE', `${repo}/config`)).toBe(403);
    expect(await raw('DELETE', `${repo}/`)).toBeGreaterThanOrEqual(400);
    // an overwrite of an existing snapshot file is refused too
    expect(await raw('POST', `${repo}/snapshots/${snapshots[0]}`)).toBeGreaterThanOrEqual(400);
    // another node's repositories are not even readable (--private-repos)
    expect(await raw('GET', 'node-b/manual/config')).toBe(401);

    expect(await listed('snapshots')).toEqual(snapshots);
    expect((await listed('data')).sort()).toEqual([...packs].sort());
    const check = await restic('node', ['check']);
    expect(check.exitCode, check.stderr).toBe(0);
    expect(await snapshotIds('node')).toEqual(ids);
  });

  it("the node's own retention and prune are refused by the scripts with a clear error", async () => {
    const retention = await run(t, 'backup-repository', [
      'manual',
      'retention',
      '--customer',
      String(customer),
    ]);
    expect(retention.exitCode).toBe(3);
    expect(errorCode(retention.events)).toBe('APPEND_ONLY');
    const prune = await run(t, 'backup-repository', ['manual', 'prune']);
    expect(prune.exitCode).toBe(3);
    expect(prune.events.find((e) => e.type === 'error')?.message).toMatch(/maintainer/);
    expect(await snapshotIds('node')).toEqual(ids);
  });

  it("with the maintainer's credentials retention and prune work", async () => {
    const env = { ...host.maintainer.env, BACKUPS_MANUAL_KEEP: '2' };
    const retention = await run(
      t,
      'backup-repository',
      ['manual', 'retention', '--customer', String(customer)],
      env,
    );
    expect(retention.exitCode, retention.stderr).toBe(0);
    const removed = retention.events.find((e) => e.type === 'retention')?.removed;
    // the oldest of the three goes (ids sorted by id, so compare by set)
    expect(removed).toHaveLength(1);
    const kept = await snapshotIds('node');
    expect(kept).toHaveLength(2);
    expect([...kept, ...(removed as string[])].sort()).toEqual(ids);
    const prune = await run(t, 'backup-repository', ['manual', 'prune'], env);
    expect(prune.exitCode, prune.stderr).toBe(0);
    const check = await restic('maintainer', ['check']);
    expect(check.exitCode, check.stderr).toBe(0);
  });
});
