// Measurement 11: the repository layout at 10,000 customers (DESIGN.md sections 5 and 15).
// Three layouts side by side, kinds interleaved in every repetition: one shared repository
// (today's default), one per group of 100 customers, one per customer. For each: a tiny
// customer's backup (the script, and restic's own part), how long the customer's retention
// (`restic forget`) and the weekly `restic prune` hold the repository's exclusive lock, and how
// long a neighbour's backup waits behind that prune; the catalog listing; storage of similar
// WordPress-like sites after deduplication.
//
// 10,000 real customers do not fit a 2-core machine in minutes, so the shared repository is
// grown to a few thousand snapshots without a backup each: 16 real backups of tiny sites, then
// repeated `restic tag --add` (new snapshot files) and `restic copy` between two repositories,
// which doubles the snapshot count each round in one restic process. Every restic command reads
// all snapshot files of its repository: the snapshot count is what the layouts differ in, and
// the figures at 5, 500 and the shared size give the trend, fitted by a line and extrapolated
// to 50,000 snapshots (10,000 customers x 5 manual). The extrapolated figures say so.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { script } from '../../server/test/support/sandbox.js';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import { mapLimit, now, spread } from './stats.js';

export interface LayoutSize {
  /** Real backups of tiny sites the shared repository starts from. */
  base: number;
  /** Rounds of doubling the real snapshots: the shared repository holds base * 2^rounds. */
  doublings: number;
  reps: number;
  /** Similar sites backed up for the storage figures. */
  sites: number;
  /** Bytes of each site's identical core (WordPress itself, themes, plugins). */
  coreBytes: number;
  /** Bytes of each site's own uploads. */
  uniqueBytes: number;
}

const KiB = 1024;
const MiB = 2 ** 20;
export const LAYOUT_FULL: LayoutSize = {
  base: 16,
  doublings: 9,
  reps: 3,
  sites: 50,
  coreBytes: 8 * MiB,
  uniqueBytes: 512 * KiB,
};
export const LAYOUT_QUICK: LayoutSize = {
  base: 6,
  doublings: 4,
  reps: 1,
  sites: 3,
  coreBytes: 1 * MiB,
  uniqueBytes: 64 * KiB,
};

const KEEP = 5;
const GROUP = 100;
const CUSTOMERS = 10_000;
const KINDS = ['shared', 'group', 'customer'] as const;
type Kind = (typeof KINDS)[number];

interface Repo {
  kind: Kind;
  dir: string;
  /** A neighbour's repository: the same one, except one per customer. */
  neighbour: string;
}

export async function measureLayout(
  world: BenchWorld,
  size: LayoutSize,
  log: (line: string) => void,
): Promise<Measurement> {
  const root = path.join(world.dataDir, 'layout');
  await mkdir(root, { recursive: true });
  const restic = async (repo: string, args: string[], extra: Record<string, string> = {}) => {
    const r = await execa('restic', ['--retry-lock', '10m', ...args], {
      env: { ...world.resticEnv(repo), ...extra },
      reject: false,
    });
    if (r.exitCode !== 0) throw new Error(`restic ${args.join(' ')}: ${r.stderr.slice(-500)}`);
    return r.stdout;
  };
  const timed = async (run: () => Promise<unknown>) => {
    const t0 = now();
    await run();
    return (now() - t0) / 1000;
  };
  const init = (repo: string) => restic(repo, ['init']);
  const tiny = async (dir: string, seed: string) => {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'index.php'), `<?php // ${seed}\n`);
    await writeFile(path.join(dir, 'wp-config.php'), `<?php define('DB_NAME', '${seed}');\n`);
  };
  const tagsOf = (customer: number) => `customer-${customer},manual,files`;

  // --- the shared repository, grown by doubling
  const setup0 = now();
  const shared = path.join(root, 'shared');
  const other = path.join(root, 'grow');
  await init(shared);
  await init(other);
  const others = path.join(root, 'others');
  await mapLimit(
    Array.from({ length: size.base }, (_, i) => i + 1),
    2,
    async (c) => {
      const site = path.join(others, `customer-${c}`, 'wordpress');
      await tiny(site, `site ${c}`);
      await restic(other, ['backup', '-q', '--tag', tagsOf(c), site]);
    },
  );
  const fromOther = { RESTIC_FROM_REPOSITORY: other, RESTIC_FROM_PASSWORD_FILE: '' };
  fromOther.RESTIC_FROM_PASSWORD_FILE = world.resticEnv(other).RESTIC_PASSWORD_FILE ?? '';
  const fromShared = { ...fromOther, RESTIC_FROM_REPOSITORY: shared };
  await restic(shared, ['copy', '-q'], fromOther);
  for (let round = 1; round <= size.doublings; round++) {
    await restic(other, ['tag', '-q', '--add', `copy-${round}`]);
    await restic(shared, ['copy', '-q'], fromOther);
    if (round < size.doublings) await restic(other, ['copy', '-q'], fromShared);
  }
  await rm(other, { recursive: true, force: true });
  const sharedCount = (await readdir(path.join(shared, 'snapshots'))).length;
  log(`  shared repository: ${sharedCount} snapshots in ${((now() - setup0) / 1000).toFixed(0)} s`);

  // --- one group's repository: 99 other customers' 5 snapshots each (copied from the shared)
  const group = path.join(root, 'group');
  await init(group);
  const ids = (JSON.parse(await restic(shared, ['snapshots', '--json'])) as { id: string }[])
    .slice(0, (GROUP - 1) * KEEP)
    .map((s) => s.id);
  await restic(group, ['copy', '-q', ...ids], fromShared);

  // --- the measured customer (tiny site) and a neighbour, 5 snapshots each in every layout
  const customer = await world.customer();
  const neighbour = await world.customer();
  const siteOf = (id: number) => path.join(world.customersRoot, `customer-${id}`, 'wordpress');
  await tiny(siteOf(customer.id), `customer ${customer.id}`);
  await tiny(siteOf(neighbour.id), `customer ${neighbour.id}`);
  const own = path.join(root, `customer-${customer.id}`);
  const ownNeighbour = path.join(root, `customer-${neighbour.id}`);
  await init(own);
  await init(ownNeighbour);
  const repos: Repo[] = [
    { kind: 'shared', dir: shared, neighbour: shared },
    { kind: 'group', dir: group, neighbour: group },
    { kind: 'customer', dir: own, neighbour: ownNeighbour },
  ];
  const backupBare = (repo: string, id: number) =>
    restic(repo, ['backup', '-q', '--tag', tagsOf(id), siteOf(id)]);
  // their 5 snapshots each made once (in the customer's own repositories), copied into the others
  for (let i = 0; i < KEEP; i++) {
    await Promise.all([backupBare(own, customer.id), backupBare(ownNeighbour, neighbour.id)]);
  }
  for (const target of [shared, group]) {
    for (const from of [own, ownNeighbour]) {
      await restic(target, ['copy', '-q'], { ...fromOther, RESTIC_FROM_REPOSITORY: from });
    }
  }
  const countOf = async (r: Repo) => (await readdir(path.join(r.dir, 'snapshots'))).length;
  const counts: Record<Kind, number> = { shared: 0, group: 0, customer: 0 };
  for (const r of repos) counts[r.kind] = await countOf(r);
  const setupSeconds = (now() - setup0) / 1000;
  log(
    `  layouts ready in ${setupSeconds.toFixed(0)} s: ${KINDS.map((k) => `${k} ${counts[k]}`).join(', ')} snapshots`,
  );

  // --- repetitions, kinds interleaved (rotated so none always runs first)
  const series = () => ({
    shared: [] as number[],
    group: [] as number[],
    customer: [] as number[],
  });
  const t = {
    script: series(),
    bare: series(),
    forget: series(),
    prune: series(),
    waitAlone: series(),
    waitBehindPrune: series(),
    listing: series(),
  };
  let touch = 0;
  for (let rep = 0; rep < size.reps; rep++) {
    const order = KINDS.map((_, i) => KINDS[(i + rep) % KINDS.length] as Kind);
    for (const kind of order) {
      const r = repos.find((x) => x.kind === kind) as Repo;
      // restic's own part of a tiny backup, then the retention that follows it (one to forget)
      await writeFile(path.join(siteOf(customer.id), 'changed.txt'), `change ${++touch}\n`);
      t.bare[kind].push(await timed(() => backupBare(r.dir, customer.id)));
      t.forget[kind].push(
        await timed(() =>
          restic(r.dir, [
            'forget',
            '-q',
            '--tag',
            `customer-${customer.id},manual`,
            '--group-by',
            '',
            '--keep-last',
            String(KEEP),
          ]),
        ),
      );
      // the product's whole backup of the tiny site: scripts/customer-backup (retention included)
      await writeFile(path.join(siteOf(customer.id), 'changed.txt'), `change ${++touch}\n`);
      t.script[kind].push(
        await timed(async () => {
          const s = await execa(script('customer-backup'), [String(customer.id), 'files'], {
            env: { ...world.scriptEnv, BACKUPS_MANUAL_REPOSITORY: r.dir },
            reject: false,
          });
          if (s.exitCode !== 0) throw new Error(`customer-backup: ${s.stderr.slice(-500)}`);
        }),
      );
      // a neighbour's backup alone, then started while this repository is being pruned
      t.waitAlone[kind].push(await timed(() => backupBare(r.neighbour, neighbour.id)));
      const pruneStart = now();
      const prune = restic(r.dir, ['prune', '-q']).then(() => (now() - pruneStart) / 1000);
      await lockTaken(r.dir);
      const waited = timed(() => backupBare(r.neighbour, neighbour.id));
      t.prune[kind].push(await prune);
      t.waitBehindPrune[kind].push(await waited);
      await restic(r.neighbour, [
        'forget',
        '-q',
        '--tag',
        `customer-${neighbour.id},manual`,
        '--group-by',
        '',
        '--keep-last',
        String(KEEP),
      ]);
      // the catalog sync's listing of this repository (backup-repository manual snapshots)
      t.listing[kind].push(
        await timed(async () => {
          const s = await execa(
            script('backup-repository'),
            ['manual', 'snapshots', '--customer', String(customer.id)],
            { env: { ...world.scriptEnv, BACKUPS_MANUAL_REPOSITORY: r.dir }, reject: false },
          );
          if (s.exitCode !== 0) throw new Error(`backup-repository: ${s.stderr.slice(-500)}`);
        }),
      );
      log(
        `  rep ${rep + 1} ${kind}: script ${t.script[kind].at(-1)?.toFixed(2)} s, restic backup ${t.bare[kind].at(-1)?.toFixed(2)} s, forget ${t.forget[kind].at(-1)?.toFixed(2)} s, prune ${t.prune[kind].at(-1)?.toFixed(2)} s, neighbour ${t.waitAlone[kind].at(-1)?.toFixed(2)} -> ${t.waitBehindPrune[kind].at(-1)?.toFixed(2)} s, listing ${t.listing[kind].at(-1)?.toFixed(2)} s`,
      );
    }
  }
  for (const r of repos) counts[r.kind] = await countOf(r);

  // --- storage of similar sites: one repository, 5 (the sites spread over groups), one each
  log(`  storage: ${size.sites} similar sites`);
  const sitesDir = path.join(root, 'sites');
  const core = path.join(sitesDir, 'core');
  await writeCore(core, size.coreBytes);
  const siteDirs: string[] = [];
  for (let i = 0; i < size.sites; i++) {
    const dir = path.join(sitesDir, `customer-${i + 1}`, 'wordpress');
    await cp(core, dir, { recursive: true });
    await mkdir(path.join(dir, 'wp-content/uploads'), { recursive: true });
    await writeFile(path.join(dir, 'wp-content/uploads/own.bin'), randomBytes(size.uniqueBytes));
    await writeFile(path.join(dir, 'wp-config.php'), `<?php define('DB_NAME', 'site_${i}');\n`);
    siteDirs.push(dir);
  }
  await rm(core, { recursive: true, force: true });
  const groups = size.sites >= 10 ? 5 : 2;
  const storage = { shared: 0, group: 0, customer: 0 };
  const storageSetup = now();
  const storeInto = async (kind: Kind, repoCount: number) => {
    const dirs = Array.from({ length: repoCount }, (_, g) => path.join(root, `store-${kind}-${g}`));
    await mapLimit(dirs, 2, async (d) => init(d));
    // each repository's sites one after another, two repositories at a time
    const byRepo = dirs.map((_, g) => siteDirs.filter((_, i) => i % repoCount === g));
    await mapLimit(byRepo, 2, async (sites, g) => {
      for (const [k, site] of sites.entries())
        await restic(dirs[g] as string, ['backup', '-q', '--tag', tagsOf(k + 1), site]);
    });
    let bytes = 0;
    for (const d of dirs) bytes += await duBytes(d);
    storage[kind] = bytes;
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  };
  await storeInto('shared', 1);
  await storeInto('group', groups);
  await storeInto('customer', size.sites);
  const raw = size.sites * (size.coreBytes + size.uniqueBytes);
  log(
    `  storage: ${KINDS.map((k) => `${k} ${(storage[k] / MiB).toFixed(1)} MiB`).join(', ')} (raw ${(raw / MiB).toFixed(0)} MiB) in ${((now() - storageSetup) / 1000).toFixed(0)} s`,
  );
  await rm(sitesDir, { recursive: true, force: true });
  for (const r of repos) await rm(r.dir, { recursive: true, force: true });
  await rm(ownNeighbour, { recursive: true, force: true });

  // --- figures
  const figures: Figure[] = [];
  const add = (name: string, unit: string, values: number[]) =>
    figures.push({ name, unit, values });
  const label = (k: Kind) =>
    k === 'shared'
      ? `shared (${counts.shared} snapshots)`
      : k === 'group'
        ? `group of 100 (${counts.group})`
        : `per customer (${counts.customer})`;
  for (const k of KINDS)
    add(`tiny backup, scripts/customer-backup files: ${label(k)}`, 's', t.script[k]);
  for (const k of KINDS) add(`restic backup alone: ${label(k)}`, 's', t.bare[k]);
  for (const k of KINDS) add(`forget (exclusive lock held): ${label(k)}`, 's', t.forget[k]);
  for (const k of KINDS) add(`prune (exclusive lock held): ${label(k)}`, 's', t.prune[k]);
  for (const k of KINDS) add(`neighbour's backup alone: ${label(k)}`, 's', t.waitAlone[k]);
  for (const k of KINDS)
    add(`neighbour's backup started during the prune: ${label(k)}`, 's', t.waitBehindPrune[k]);
  for (const k of KINDS) add(`catalog listing of the repository: ${label(k)}`, 's', t.listing[k]);
  for (const k of ['shared', 'group'] as const)
    add(
      `tiny backup: ${k} / per customer`,
      'x',
      t.script[k].map((v, i) => v / (t.script.customer[i] ?? Number.NaN)),
    );
  add(`storage of ${size.sites} similar sites: 1 repository`, 'MiB', [storage.shared / MiB]);
  add(`storage of ${size.sites} similar sites: ${groups} repositories`, 'MiB', [
    storage.group / MiB,
  ]);
  add(`storage of ${size.sites} similar sites: ${size.sites} repositories`, 'MiB', [
    storage.customer / MiB,
  ]);

  // --- extrapolation to 10,000 customers: the group's and the customer's own repositories are
  // measured at their sizes (500 and 5 snapshots); the shared one's 50,000 from a line through
  // the three medians (flat when the noise hides any growth: then the line is no better).
  const full = CUSTOMERS * KEEP;
  const groupN = GROUP * KEEP;
  const flat: string[] = [];
  const fitOf = (name: string, s: Record<Kind, number[]>) => {
    const fit = lineFit(
      KINDS.map((k) => counts[k]),
      KINDS.map((k) => spread(s[k]).median),
    );
    if (fit.b > 0) return fit;
    flat.push(name);
    return { a: KINDS.reduce((sum, k) => sum + spread(s[k]).median, 0) / KINDS.length, b: 0 };
  };
  const at = (name: string, s: Record<Kind, number[]>, n: number) => {
    if (n === groupN) return spread(s.group).median;
    if (n === KEEP) return spread(s.customer).median;
    const fit = fitOf(name, s);
    return fit.a + fit.b * n;
  };
  const perSnapshotMs = (name: string, s: Record<Kind, number[]>) => fitOf(name, s).b * 1000;
  const listShared = at('listing', t.listing, full);
  const listGroup = at('listing', t.listing, groupN);
  const listOwn = at('listing', t.listing, KEEP);
  const perSiteMarginal = (storage.shared - storage.customer / size.sites) / (size.sites - 1);
  const repoFixed = storage.customer / size.sites - perSiteMarginal;
  const storeAt = (repos: number) => repos * repoFixed + CUSTOMERS * perSiteMarginal;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const extrapolated = [
    `EXTRAPOLATED to ${CUSTOMERS.toLocaleString('en')} customers x ${KEEP} manual snapshots: a shared repository holds ${full.toLocaleString('en')} snapshots, a group's ${groupN}, a customer's ${KEEP}. The group and per-customer figures below are the measured medians (${counts.group} and ${counts.customer} snapshots); the shared one's is a least-squares line through the three measured repositories (${KINDS.map((k) => counts[k]).join(' / ')} snapshots) at ${full.toLocaleString('en')}, restic reading every snapshot file per command.`,
    `EXTRAPOLATED tiny backup (script): shared ${at('backup', t.script, full).toFixed(1)} s, group ${at('backup', t.script, groupN).toFixed(2)} s, per customer ${at('backup', t.script, KEEP).toFixed(2)} s (+${perSnapshotMs('backup', t.script).toFixed(3)} ms per snapshot in the repository).`,
    `EXTRAPOLATED forget lock per customer retention: shared ${at('forget', t.forget, full).toFixed(1)} s, and every one of the ${CUSTOMERS.toLocaleString('en')} customers' nightly retention takes it in turn: ${((at('forget', t.forget, full) * CUSTOMERS) / 3600).toFixed(1)} h of exclusive lock a night on the one repository that every backup and restore needs; group ${at('forget', t.forget, groupN).toFixed(2)} s x 100 customers = ${((at('forget', t.forget, groupN) * GROUP) / 60).toFixed(1)} min a night per group (only that group's 100 customers wait); per customer ${at('forget', t.forget, KEEP).toFixed(2)} s, nobody else waits.`,
    `EXTRAPOLATED prune (the weekly exclusive lock): shared ${at('prune', t.prune, full).toFixed(1)} s with everyone waiting (a floor: these snapshots share their few trees and data, a real one walks ${CUSTOMERS.toLocaleString('en')} sites' trees and index); group ${at('prune', t.prune, groupN).toFixed(2)} s x 100 groups, 100 customers waiting each; per customer ${at('prune', t.prune, KEEP).toFixed(2)} s x ${CUSTOMERS.toLocaleString('en')} runs, only its owner waiting.`,
    `EXTRAPOLATED catalog resync (syncCatalog lists each repository once, one after another): shared 1 x ${listShared.toFixed(1)} s; group 100 x ${listGroup.toFixed(2)} s = ${((100 * listGroup) / 60).toFixed(1)} min; per customer ${CUSTOMERS.toLocaleString('en')} x ${listOwn.toFixed(2)} s = ${((CUSTOMERS * listOwn) / 60).toFixed(0)} min. The daily repository at 30 days holds 6 x more snapshots (300,000 shared).`,
    `EXTRAPOLATED storage of ${CUSTOMERS.toLocaleString('en')} similar sites of this shape (measured: a repository's first site ${(repoFixed / MiB + perSiteMarginal / MiB).toFixed(2)} MiB, each further similar site in the same repository ${(perSiteMarginal / MiB).toFixed(2)} MiB): shared ${gib(storeAt(1))}, groups of 100 ${gib(storeAt(CUSTOMERS / GROUP))}, per customer ${gib(storeAt(CUSTOMERS))}.`,
  ];
  if (flat.length)
    extrapolated.push(
      `No growth with the snapshot count measurable above the noise for: ${[...new Set(flat)].join(', ')}; their shared figure at ${full.toLocaleString('en')} is the mean of the three, not a trend.`,
    );
  return {
    id: 11,
    title: 'Repository layout at 10,000 customers: shared, per group of 100, per customer',
    setup: `MEASURED: a shared repository of ${counts.shared} snapshots (${size.base} real backups of tiny sites, then ${size.doublings} rounds of restic tag + restic copy doubling them), a group's of ${counts.group} (99 other customers x ${KEEP}, copied from it, plus the measured customer's), a customer's own of ${counts.customer}; a tiny customer (2 files) with ${KEEP} snapshots in each, and a neighbour (another tiny customer, in the same repository except per customer) with ${KEEP} too; ${size.reps} repetitions, the layouts interleaved (order rotated). Per repetition and layout: restic backup of the tiny site, restic forget --keep-last ${KEEP} of that customer (one to remove), scripts/customer-backup <id> files (restic backup + the retention), a neighbour's backup alone and then started once the restic prune of the repository holds its lock (--retry-lock), scripts/backup-repository manual snapshots (the catalog sync's listing). Storage: ${size.sites} similar sites (identical ${(size.coreBytes / MiB).toFixed(0)} MiB core of random files, ${(size.uniqueBytes / KiB).toFixed(0)} KiB own uploads each) backed up into 1, ${groups} and ${size.sites} repositories, du of the repositories. Setup ${setupSeconds.toFixed(0)} s. The figures with ${KINDS.map((k) => counts[k]).join(' / ')} snapshots are measured; everything at 10,000 customers below is extrapolated and says so.`,
    figures,
    notes: extrapolated,
    limits: `restic reads every snapshot file of the repository in each command (from the local cache here, warm), so a backup's fixed time, forget's lock and the listing grow with the snapshot count; prune here is a floor, because the copied snapshots share a few trees and blobs (a real shared repository's index holds every site's data). A local folder on a shared 2-core machine: sftp:/rest: add a round trip per file read (measurement 7). The neighbour waits behind the prune only where it shares the repository.`,
  };
}

/** Waits until a restic lock file exists in a local repository (the prune's, exclusive). */
async function lockTaken(repo: string): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const locks = await readdir(path.join(repo, 'locks')).catch(() => []);
    // a lock id, not restic's `<id>-tmp-<n>` that becomes it once synced and renamed
    if (locks.some((name) => /^[0-9a-f]{64}$/.test(name))) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no lock appeared in ${repo}`);
}

/** Least squares line y = a + b x. */
function lineFit(xs: number[], ys: number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += ((xs[i] ?? 0) - mx) * ((ys[i] ?? 0) - my);
    sxx += ((xs[i] ?? 0) - mx) ** 2;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  return { a: my - b * mx, b };
}

/** A WordPress-like core: many small files and a few larger ones, random (incompressible). */
async function writeCore(dir: string, bytes: number): Promise<void> {
  let left = bytes;
  for (let i = 0; left > 0; i++) {
    const sub = path.join(
      dir,
      i % 3 === 0 ? 'wp-includes' : i % 3 === 1 ? 'wp-admin' : 'wp-content/plugins',
      `d${Math.floor(i / 50)}`,
    );
    if (i % 50 < 3) await mkdir(sub, { recursive: true });
    const size = Math.min(left, i % 40 === 0 ? 256 * KiB : 4 * KiB + ((i * 7919) % 16) * KiB);
    await writeFile(path.join(sub, `file-${i}.php`), randomBytes(size));
    left -= size;
  }
}

async function duBytes(dir: string): Promise<number> {
  const r = await execa('du', ['-sb', dir]);
  return Number(r.stdout.split('\t')[0]);
}
