// Measurement 6: restoring one 1 MiB file of the site (customer-restore --paths-from), beside
// a bare `restic restore --include` of that file into a new folder; and its maintenance window.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { type BenchWorld, PROJECT_DIR } from './env.js';
import type { Figure, Measurement } from './report.js';
import type { BenchSite } from './site.js';
import { now, spread } from './stats.js';

const FILE = 'wp-content/uploads/2026/01/photo-0.jpg';

export async function measurePartialRestore(
  world: BenchWorld,
  site: BenchSite,
  snapshotId: string,
  reps: number,
  log: (line: string) => void,
): Promise<Measurement> {
  const id = site.customer.id;
  const live = path.join(site.siteDir, 'wordpress', FILE);
  const backedUp = await readFile(live);
  const env = world.resticEnv(path.join(world.dataDir, 'repos', 'manual'));
  const pathsFrom = path.join(world.dataDir, 'bench-paths-from');
  await writeFile(pathsFrom, `${FILE}\0`);
  const script: number[] = [];
  const restored: number[] = [];
  const bare: number[] = [];
  const ratio: number[] = [];
  const window: number[] = [];

  // A restore of chosen paths needs the snapshot's index (the api refuses one without it:
  // server/src/jobs/job-requests.ts), made when the customer browses the backup; the index
  // keeps the snapshot's listing (scripts/lib/snapshot-layout.sh), which the restore reads.
  const indexed = await execa(
    path.join(PROJECT_DIR, 'scripts', 'customer-index'),
    [String(id), snapshotId, 'manual'],
    { env: world.scriptEnv, extendEnv: false, reject: false },
  );
  if (indexed.exitCode !== 0) throw new Error(`customer-index failed: ${indexed.stderr}`);
  const listings = path.join(world.dataDir, 'work', 'listings');
  const dropKeptListing = async () => {
    for (const f of await readdir(listings).catch(() => [] as string[]))
      if (f.endsWith(`-${snapshotId}.json`)) await rm(path.join(listings, f));
  };
  const unlisted: number[] = [];
  const unlistedRatio: number[] = [];

  const viaScript = async () => {
    // The live file changed since the backup: the restore really replaces it.
    await writeFile(live, randomBytes(backedUp.length));
    const t0 = now();
    let completedAt = 0;
    let out = '';
    const child = execa(
      path.join(PROJECT_DIR, 'scripts', 'customer-restore'),
      [String(id), snapshotId, 'files', 'manual', '--paths-from', pathsFrom],
      { env: world.scriptEnv, extendEnv: false, reject: false, buffer: false },
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!completedAt && out.includes('"type":"completed"')) completedAt = now();
    });
    child.stderr?.resume();
    const r = await child;
    const ms = now() - t0;
    const lines = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; on?: boolean; at?: number });
    if (r.exitCode !== 0 || !completedAt) throw new Error('the partial restore failed');
    if (!(await readFile(live)).equals(backedUp)) throw new Error('the file did not come back');
    const on = lines.find((e) => e.type === 'maintenance' && e.on)?.at ?? 0;
    const off = lines.find((e) => e.type === 'maintenance' && e.on === false)?.at ?? 0;
    return { completed: completedAt - t0, ms, window: off - on };
  };
  const byHand = async () => {
    const target = await mkdtemp(path.join(world.dataDir, 'bench-include-'));
    try {
      const t0 = now();
      await execa(
        'restic',
        ['restore', '--sparse', snapshotId, '--target', target, '--include', live],
        { env, extendEnv: false },
      );
      return now() - t0;
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  };

  // One untimed run of each first: the first run of either reads the repository's files
  // from disk and fills restic's cache, and whichever went second profited from it (the
  // script, run first in the first repetition, measured 2.5x where the next ones gave 1.5x).
  const warm = await viaScript();
  const warmBare = await byHand();
  log(
    `partial restore warm-up (not counted): restored in ${(warm.completed / 1000).toFixed(2)} s, restic --include ${(warmBare / 1000).toFixed(2)} s`,
  );
  for (let rep = 0; rep < reps; rep++) {
    let a: { completed: number; ms: number; window: number };
    let b: number;
    if (rep % 2 === 0) {
      a = await viaScript();
      b = await byHand();
    } else {
      b = await byHand();
      a = await viaScript();
    }
    // The same restore of a snapshot whose kept listing is gone (indexed more than
    // BACKUPS_LISTING_KEEP_DAYS ago): it lists the snapshot itself, beside the download.
    await dropKeptListing();
    const u = await viaScript();
    unlisted.push(u.completed / 1000);
    unlistedRatio.push(u.completed / b);
    script.push(a.ms / 1000);
    restored.push(a.completed / 1000);
    bare.push(b / 1000);
    ratio.push(a.completed / b);
    window.push(a.window / 1000);
    log(
      `partial restore rep ${rep + 1}: restored in ${(a.completed / 1000).toFixed(2)} s (script ${(a.ms / 1000).toFixed(2)} s), restic --include ${(b / 1000).toFixed(2)} s, ratio ${(a.completed / b).toFixed(2)}, maintenance window ${(a.window / 1000).toFixed(3)} s; without the kept listing ${(u.completed / 1000).toFixed(2)} s, ratio ${(u.completed / b).toFixed(2)}`,
    );
  }
  const figures: Figure[] = [
    {
      name: 'customer-restore --paths-from (one 1 MiB file) → completed (site restored and open)',
      unit: 's',
      values: restored,
    },
    {
      name: 'customer-restore --paths-from, whole script (undo point stored, cleaned up)',
      unit: 's',
      values: script,
    },
    { name: 'restic restore --include of that file into a new folder', unit: 's', values: bare },
    {
      name: 'overall: customer-restore → completed / restic restore --include',
      unit: 'x',
      values: ratio,
      target: '<= 1.5',
      pass: spread(ratio).median <= 1.5,
    },
    {
      name: 'the same, the kept listing removed first (the restore lists the snapshot itself) → completed',
      unit: 's',
      values: unlisted,
    },
    {
      name: 'without the kept listing: customer-restore → completed / restic restore --include',
      unit: 'x',
      values: unlistedRatio,
    },
    {
      name: 'maintenance window (maintenance on → off events)',
      unit: 's',
      values: window,
      target: '< 1',
      pass: spread(window).max < 1,
    },
  ];
  return {
    id: 6,
    title: 'Restoring one file of the site',
    figures,
    setup: `The site of measurement 3, from the snapshot its last worker backup made; ${FILE} (1 MiB) is changed live before each run. The snapshot is indexed first (customer-index, untimed: the api restores chosen paths only of an indexed snapshot, browsed by the customer), which keeps its listing. The script (no api, no queue) runs to its end: the download of the file into the staging folder (private to the script) starts together with the ownership check on the snapshot's kept listing (whose it is, where its content folder is, the path in it, its size for the space check; without it, one restic listing of the snapshot beside the download: the second script run of each repetition, its kept listing removed first); once every check has passed, the download is kept (it read the content folder the listing found), the safety repository is opened (unless it is the snapshot's own), then the swap under maintenance (the live file into the undo folder, the staged one in), and after "completed" the undo point (that one file and a manifest) stored in the safety repository. By hand: \`restic restore --include\` of the same file into a new folder. One untimed run of each first (both then read a warm repository and cache), then the order alternates; ${reps} repetitions.`,
    limits:
      "Both read the snapshot's index and the chosen file's tree, and each restic start derives the repository key and reads the index and every snapshot file (about 0.3-0.5 s of CPU here). With the kept listing the script starts restic once before the swap, as the bare restore does (the download), and checks ownership, the path and the space on the listing it kept meanwhile (a few jq and grep); without it a second restic lists the whole tree beside the download, and that listing (0.8 s for 16,646 files) is the critical path. After \"completed\" another start stores the undo point. The maintenance window is the journal's step, the renames, the parent's time put back and the site's stop/start commands (here trivial; they get stdin from /dev/null: with the worker's socket as stdin, bash -c read ~/.bashrc, 0.1-0.3 s each).",
  };
}
