import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptRunner } from '../../src/executors/script-runner.js';
import { createLogger } from '../../src/infra/logger.js';
import { runMaintenance } from '../../src/maintainer/maintenance.js';
import { syncCatalog } from '../../src/snapshots/catalog-sync.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { buildCustomer } from '../support/factories.js';
import {
  REPOSITORY_KINDS,
  type RepositoryHost,
  repositoryHost,
} from '../support/repository-servers.js';
import { SCRIPTS_DIR } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

type Kind = 'manual' | 'safety' | 'daily';
const DAY = 86_400;

/**
 * What each customer has in the repositories before the maintainer runs, as seconds before a
 * base time (the newest of each group at 0): more than the promise (5 manual, 3 undo points,
 * 30 days of dailies, the defaults) for two customers, less for a third.
 */
const PLAN: Record<'a' | 'b' | 'c', Partial<Record<Kind, number[]>>> = {
  a: {
    manual: [0, 60, 120, 180, 240, 300, 360],
    safety: [0, 60, 120, 180, 240],
    // 30 days less a second is kept; exactly 30 days before the newest is not (restic's rule)
    daily: [0, 30 * DAY - 1, 30 * DAY, 45 * DAY],
  },
  b: { manual: [10, 70, 130, 190, 250, 310], safety: [10, 70, 130], daily: [3600, 31 * DAY] },
  c: { manual: [20, 80] },
};
const KEPT: Record<Kind, (ago: number[]) => number[]> = {
  manual: (ago) => ago.slice(0, 5),
  safety: (ago) => ago.slice(0, 3),
  daily: (ago) => ago.filter((s) => s - (ago[0] ?? 0) < 30 * DAY),
};

// The maintainer's retention of a shared repository: every customer's policy at once, in one
// forget call per batch of snapshots (not one per customer), the same snapshots kept as
// restic's own policy keeps for each customer, the catalog in step. Over each repository
// kind; the local one with batches of 2 snapshots, so that a pass takes several calls.
describe.each(REPOSITORY_KINDS.map((kind) => ({ kind, batch: kind === 'local' ? 2 : undefined })))(
  "the maintainer's retention of many customers ($kind repository)",
  ({ kind, batch }) => {
    let host: RepositoryHost;
    let world: WorkerWorld;
    let dir: string;
    const node = 'node-r';
    const ids: Record<'a' | 'b' | 'c', number> = { a: 0, b: 0, c: 0 };
    /** snapshot id -> [customer key, kind, seconds before the base] */
    const made = new Map<string, ['a' | 'b' | 'c', Kind, number]>();
    let legacy = '';

    const repositoryOf = (k: Kind) => (k === 'daily' ? 'daily' : 'manual');
    const restic = (k: Kind, args: string[], input = '') =>
      execa('restic', [...host.maintainer.resticArgs, ...args], {
        env: { ...host.maintainer.resticEnv(repositoryOf(k)), TZ: 'UTC' },
        input,
      });
    const listed = async (k: Kind) =>
      (
        JSON.parse((await restic(k, ['snapshots', '--json', '--tag', k])).stdout) as {
          id: string;
        }[]
      )
        .map((s) => s.id)
        .sort();

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), `maintainer-retention-${kind}-`));
      // rest: the node cannot forget, as in production; sftp and local: full rights
      host = await repositoryHost(kind, dir, { appendOnly: kind === 'rest' });
      world = await createWorkerWorld({}, { dir, repositories: host.node });
      for (const key of ['a', 'b', 'c'] as const)
        ids[key] = (await buildCustomer(world.db.orm.em, { host: node })).id;
      const base = Math.floor(Date.now() / 1000) - 60;
      const stamp = (ago: number) =>
        new Date((base - ago) * 1000).toISOString().replace('T', ' ').slice(0, 19);
      const jobs: (() => Promise<void>)[] = [];
      for (const key of ['a', 'b', 'c'] as const) {
        for (const [k, agos] of Object.entries(PLAN[key]) as [Kind, number[]][]) {
          for (const ago of agos) {
            jobs.push(async () => {
              const r = await restic(
                k,
                [
                  'backup',
                  '--json',
                  '--stdin',
                  '--stdin-filename',
                  `customer_${ids[key]}.sql`,
                  '--tag',
                  `customer-${ids[key]},${k},db`,
                  '--time',
                  stamp(ago),
                ],
                `-- ${key} ${k} ${ago}\n`,
              ).catch((error: unknown) => {
                throw new Error(`restic backup failed: ${String(error)}`);
              });
              const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}');
              made.set(summary.snapshot_id, [key, k, ago]);
            });
          }
        }
      }
      // a legacy daily snapshot (no customer tag) that holds customer a's dump: in the catalog
      // by membership (the path), in nobody's retention
      jobs.push(async () => {
        const r = await restic(
          'daily',
          [
            'backup',
            '--json',
            '--stdin',
            '--stdin-filename',
            `customer_${ids.a}.sql`,
            '--tag',
            'daily',
            '--time',
            stamp(90 * DAY),
          ],
          '-- every customer\n',
        );
        legacy = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}').snapshot_id;
      });
      // four restic processes at a time (backups share a repository's lock)
      const queue = [...jobs];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let job = queue.shift(); job; job = queue.shift()) await job();
        }),
      );
    });
    afterAll(async () => {
      await world?.destroy();
      await host?.destroy();
    });

    const ofCustomer = (key: 'a' | 'b' | 'c', k: Kind) =>
      [...made].filter(([, [owner, kk]]) => owner === key && kk === k);

    it("keeps each customer's promise exactly (what restic's own policy keeps), in one forget call per batch, and the catalog follows", async () => {
      // the promise, by construction: 2 + 1 manual, 2 undo points, 2 + 1 dailies go
      const expectedGone = new Set<string>();
      for (const [id, [key, k, ago]] of made) {
        const agos = (PLAN[key][k] ?? []).slice().sort((x, y) => x - y);
        if (!KEPT[k](agos).includes(ago)) expectedGone.add(id);
      }
      expect(expectedGone.size).toBe(8);
      // and restic's own policy, asked customer by customer as the worker's retention asks it,
      // lets the same ones go (on the local folder: the policy does not depend on the transport)
      if (kind === 'local') {
        const keep: Record<Kind, string> = { manual: '5', safety: '3', daily: '30d' };
        const resticGone = new Set<string>();
        for (const key of ['a', 'b', 'c'] as const) {
          for (const k of Object.keys(PLAN[key]) as Kind[]) {
            const r = await restic(k, [
              'forget',
              '--dry-run',
              '--json',
              '--tag',
              `customer-${ids[key]},${k}`,
              '--group-by',
              '',
              k === 'daily' ? '--keep-within' : '--keep-last',
              keep[k],
            ]);
            const groups = JSON.parse(r.stdout) as { remove: { id: string }[] | null }[];
            for (const g of groups) for (const x of g.remove ?? []) resticGone.add(x.id);
          }
        }
        expect([...resticGone].sort()).toEqual([...expectedGone].sort());
      }

      const scriptsNode = new ScriptRunner({
        scriptsDir: SCRIPTS_DIR,
        prefix: '',
        env: world.scriptsEnv.env,
        logger: createLogger('maintainer-test', 'warn'),
      });
      const logger = createLogger('maintainer-test', 'warn');
      await syncCatalog({ orm: world.db.orm, scripts: scriptsNode, logger, node });
      const em = () => world.db.orm.em.fork();
      const catalog = await em().find(Snapshot, { customer: { $in: Object.values(ids) } });
      expect(catalog).toHaveLength(made.size + 1);
      expect(catalog.filter((r) => r.snapshotId === legacy).map((r) => r.customer.id)).toEqual([
        ids.a,
      ]);

      // every restic call of the maintainer's scripts, through a wrapper that runs restic
      const calls = path.join(dir, 'restic-calls.log');
      const wrapper = path.join(dir, 'restic-logged');
      await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >>'${calls}'\nexec restic "$@"\n`);
      await chmod(wrapper, 0o755);
      await writeFile(calls, '');
      const scripts = new ScriptRunner({
        scriptsDir: SCRIPTS_DIR,
        prefix: '',
        env: {
          ...world.scriptsEnv.env,
          ...host.maintainer.env,
          BACKUPS_RESTIC_BIN: wrapper,
          ...(batch ? { BACKUPS_RETENTION_BATCH: String(batch) } : {}),
        },
        logger,
      });
      const report = await runMaintenance({ orm: world.db.orm, scripts, logger });
      expect(report.failed).toEqual([]);
      expect(report.removed).toEqual({ manual: 3, safety: 2, daily: 3 });

      for (const k of ['manual', 'safety', 'daily'] as const) {
        const remaining = await listed(k);
        const expected = [...made]
          .filter(([id, [, kk]]) => kk === k && !expectedGone.has(id))
          .map(([id]) => id);
        if (k === 'daily') expected.push(legacy);
        expect(remaining).toEqual(expected.sort());
        // and that is the promise: the newest 5 / 3, the last 30 days
        for (const key of ['a', 'b', 'c'] as const) {
          const agos = ofCustomer(key, k)
            .filter(([id]) => remaining.includes(id))
            .map(([, [, , ago]]) => ago)
            .sort((x, y) => x - y);
          expect(agos).toEqual(KEPT[k]((PLAN[key][k] ?? []).slice().sort((x, y) => x - y)));
        }
      }
      // the catalog lost exactly the forgotten snapshots
      const rows = await em().find(Snapshot, { customer: { $in: Object.values(ids) } });
      expect(rows.map((r) => r.snapshotId).sort()).toEqual(
        [...[...made.keys()].filter((id) => !expectedGone.has(id)), legacy].sort(),
      );

      // one listing and one forget call per batch and source, whatever the number of customers
      const log = (await readFile(calls, 'utf8')).split('\n').filter(Boolean);
      const forgets = log.filter((line) => / forget /.test(` ${line} `));
      const perSource = batch ? 2 + 1 + 2 : 1 + 1 + 1; // manual 3, safety 2, daily 3 removed
      expect(forgets).toHaveLength(perSource);
      expect(log.filter((line) => / snapshots /.test(` ${line} `))).toHaveLength(3);

      // a second pass finds nothing to do and takes no exclusive lock
      await writeFile(calls, '');
      const again = await runMaintenance({ orm: world.db.orm, scripts, logger });
      expect(again.removed).toEqual({ manual: 0, safety: 0, daily: 0 });
      const second = (await readFile(calls, 'utf8')).split('\n').filter(Boolean);
      expect(second.filter((line) => / forget /.test(` ${line} `))).toEqual([]);
    });
  },
);
