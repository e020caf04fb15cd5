// Measurement 4: restore. `restoreSnapshot` through the api until COMPLETED (staged download,
// scratch import, atomic swap; the undo point is stored right after), against `restic restore` + a `mysql` import by
// hand into a fresh folder and database; and the maintenance window of the worker's restore.
import { randomBytes } from 'node:crypto';
import { existsSync, watch } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { housekeepingDone, phaseSummary, runApiJob, workerIdle } from './backup.js';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import type { BenchSite } from './site.js';
import { now, spread } from './stats.js';

export async function measureRestore(
  world: BenchWorld,
  site: BenchSite,
  snapshotId: string,
  reps: number,
  log: (line: string) => void,
): Promise<Measurement> {
  const id = site.customer.id;
  const maintenanceFile = path.join(site.siteDir, '.maintenance');
  const siteLog = path.join(world.dataDir, 'site-commands.log');
  const worker: number[] = [];
  const hand: number[] = [];
  const ratio: number[] = [];
  const window: number[] = [];
  const unavailable: number[] = [];
  const stopped: number[] = [];
  const planWindow: number[] = [];
  const phaseRuns: Record<string, number>[] = [];
  const housekeeping: number[] = [];
  const untilIdle: number[] = [];
  await workerIdle(world);

  const viaWorker = async () => {
    // Watch the site as nginx would: 503 while <site>/.maintenance exists. inotify tells when
    // it appears or goes (polling every 2 ms took CPU from the restore being measured).
    let down = 0;
    let since: number | null = null;
    const look = () => {
      const on = existsSync(maintenanceFile);
      if (on && since === null) since = now();
      if (!on && since !== null) {
        down += now() - since;
        since = null;
      }
    };
    const watcher = watch(site.siteDir, (_event, name) => {
      if (name === '.maintenance') look();
    });
    look();
    try {
      const { ms, jobId, phases } = await runApiJob(
        world,
        'mutation($s: ID!, $c: ID!) { restoreSnapshot(snapshotId: $s, scope: BOTH, confirmation: "RESTORE", customerId: $c) { $JOB } }',
        { s: snapshotId, c: String(id) },
        3600_000,
      );
      phaseRuns.push(phases);
      const after = await housekeepingDone(world, id);
      housekeeping.push(after / 1000);
      untilIdle.push((ms + after) / 1000);
      const events = world.maintenance.filter((e) => e.jobId === jobId);
      const on = events.find((e) => e.on)?.at;
      const off = events.find((e) => !e.on)?.at;
      const log = (await readFile(siteLog, 'utf8').catch(() => '')).split('\n');
      const last = (verb: string) =>
        Number(
          log
            .filter((l) => l.startsWith(`${verb} ${id} `))
            .at(-1)
            ?.split(' ')[2] ?? Number.NaN,
        );
      return {
        ms,
        window: on && off ? off - on : Number.NaN,
        stopped: last('start') - last('stop'),
      };
    } finally {
      look();
      watcher.close();
      if (since !== null) down += now() - since;
      unavailable.push(down / 1000);
    }
  };
  const byHand = () => restoreByHand(world, id, snapshotId);

  for (let rep = 0; rep < reps; rep++) {
    let a: Awaited<ReturnType<typeof viaWorker>>;
    let b: number;
    if (rep % 2 === 0) {
      a = await viaWorker();
      b = await byHand();
    } else {
      b = await byHand();
      a = await viaWorker();
    }
    worker.push(a.ms / 1000);
    hand.push(b / 1000);
    ratio.push(a.ms / b);
    window.push(a.window / 1000);
    stopped.push(a.stopped / 1000);
    planWindow.push(b / 1000 + 10);
    log(
      `restore rep ${rep + 1}: worker ${(a.ms / 1000).toFixed(1)} s, by hand ${(b / 1000).toFixed(1)} s, ratio ${(a.ms / b).toFixed(2)}, maintenance window ${(a.window / 1000).toFixed(2)} s`,
    );
  }
  const figures: Figure[] = [
    {
      name: 'restoreSnapshot → COMPLETED (api + queue + worker + script)',
      unit: 's',
      values: worker,
    },
    { name: 'restic restore + mysql import by hand', unit: 's', values: hand },
    {
      name: 'restoreSnapshot → undo point stored and cleaned up (script ended)',
      unit: 's',
      values: untilIdle,
    },
    {
      name: 'overall: worker / by hand',
      unit: 'x',
      values: ratio,
      target: '<= 1.3x',
      pass: spread(ratio).median <= 1.3,
    },
    {
      name: 'maintenance window (maintenance on → off events)',
      unit: 's',
      values: window,
      target: '< 3 s',
      pass: spread(window).max < 3,
    },
    {
      name: 'site answering 503 (.maintenance present, seen through inotify)',
      unit: 's',
      values: unavailable,
    },
    { name: 'site stopped (stop → start command)', unit: 's', values: stopped },
    { name: "the plan's window (restore by hand + 10 s)", unit: 's', values: planWindow },
  ];
  return {
    id: 4,
    title: 'Restore',
    setup: `The site of measurement 3 (scope BOTH), from the snapshot its last worker backup made. The worker's time runs from the restoreSnapshot request (admin token, confirmation RESTORE) to COMPLETED: verify ownership, space check, a check that the safety repository opens, download into a staging folder, import into a scratch database, then the swap under maintenance (the live folder moves into the undo folder, the live tables into customer_N__previous). Then, after COMPLETED, the undo point (that folder + a dump of those tables) is stored in the safety repository. By hand: \`restic restore\` of the same snapshot into a new folder + \`mariadb\` import of its dump into a new database (nothing else: no undo point, no swap, the site would be down throughout). Order alternates; ${reps} repetitions. The site's stop/start commands only write a timestamp (no containers).`,
    figures,
    notes: [
      `Worker job by phase (median over the repetitions, as the worker announced them): ${phaseSummary(phaseRuns)}. The safety repository's check, the files' download and the database's download + import run side by side; a phase lasts while the script waits for that step, in this order.`,
      `After COMPLETED (site switched over and open) the script's housekeeping (the undo point made from the folder and the tables the swap moved aside, then both removed, the undo points' retention) ran on for a median ${spread(housekeeping).median.toFixed(1)} s under the customer's lock; the next measurement waited for it. Until the undo point is stored its folder stays on disk, also after a kill or a failure (customer-restore --recover stores it).`,
    ],
    limits:
      "The worker's restore does more work than the hand restore: it verifies the snapshot and the free space (one restic listing for a manual snapshot), downloads the files and imports the database side by side on the 2 shared cores, and swaps under maintenance. The undo point (a mysqldump of the replaced tables and a restic backup of the replaced folder: restic reads and hashes every byte, the folder's path and inodes being new to it) is made after COMPLETED, as do the cleanup and the undo points' retention: they delay the customer's next job, not the site. The maintenance window is bound by the folder renames, one RENAME TABLE, recreating views/triggers and the site's stop/start commands (here trivial; real `docker compose down/up` adds their own seconds).",
  };
}

/**
 * The baseline of a restore: `restic restore` of the snapshot into a new folder and a `mariadb`
 * import of its dump into a new database, nothing else; both removed after. Milliseconds.
 */
export async function restoreByHand(
  world: BenchWorld,
  id: number,
  snapshotId: string,
): Promise<number> {
  const env = world.resticEnv(path.join(world.dataDir, 'repos', 'manual'));
  const target = path.join(world.dataDir, `hand-restore-${randomBytes(3).toString('hex')}`);
  const db = `bench_hand_${randomBytes(5).toString('hex')}`;
  try {
    const t0 = now();
    await execa('restic', ['restore', '--sparse', snapshotId, '--target', target], {
      env,
      extendEnv: true,
      stdout: 'ignore',
    });
    const dump = path.join(
      target,
      world.dataDir,
      'work',
      'dumps',
      `customer-${id}`,
      `customer_${id}.sql`,
    );
    await world.sql(`create database ${db} character set utf8mb4`);
    await execa('mariadb', ['-uroot', '--binary-mode', '--default-character-set=utf8mb4', db], {
      inputFile: dump,
    });
    return now() - t0;
  } finally {
    await rm(target, { recursive: true, force: true });
    await world.sql(`drop database if exists ${db}`);
  }
}
