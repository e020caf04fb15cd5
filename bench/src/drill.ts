// Measurement 6: a restore drill (DESIGN.md §12). `verifySnapshot` through the api until
// COMPLETED (customer-verify: the snapshot restored with `restic restore --verify` into a
// sandbox beside the site, every file checked, the dump imported into a scratch database
// through a confined account, its tables checked, all removed), against `restic restore` +
// `mariadb` import by hand of the same snapshot; order alternating.
import { housekeepingDone, phaseSummary, runApiJob, workerIdle } from './backup.js';
import { listingLoad } from './catalog.js';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import { restoreByHand } from './restore.js';
import type { BenchSite } from './site.js';
import { quantile, sleep, spread } from './stats.js';

export async function measureDrill(
  world: BenchWorld,
  site: BenchSite,
  snapshotId: string,
  reps: number,
  log: (line: string) => void,
  quick = false,
): Promise<Measurement> {
  const id = site.customer.id;
  const drill: number[] = [];
  const measured: number[] = [];
  const hand: number[] = [];
  const ratio: number[] = [];
  const phaseRuns: Record<string, number>[] = [];
  await workerIdle(world);
  // the housekeeping of the site's last backup (its retention holds the repository's lock):
  // the first drill's listing waited 5 s for it
  await housekeepingDone(world, id);
  const viaWorker = async () => {
    const run = await runApiJob(
      world,
      'mutation($s: ID!, $c: ID!) { verifySnapshot(snapshotId: $s, customerId: $c) { $JOB } }',
      { s: snapshotId, c: String(id) },
      3600_000,
    );
    // The sandbox's removal comes after COMPLETED, under no customer lock: the next
    // repetition waits for the drill's script to end (the job settled).
    await housekeepingDone(world, id);
    while (!(await world.job(run.jobId)).settledAt) await sleep(200);
    phaseRuns.push(run.phases);
    const seconds = Number(
      await world.sql(
        `select restore_seconds from ${world.dbName}.snapshot_verifications where job_id = ${run.jobId}`,
      ),
    );
    return { ms: run.ms, restoreSeconds: seconds };
  };
  for (let rep = 0; rep < reps; rep++) {
    let a: Awaited<ReturnType<typeof viaWorker>>;
    let b: number;
    if (rep % 2 === 0) {
      a = await viaWorker();
      b = await restoreByHand(world, id, snapshotId);
    } else {
      b = await restoreByHand(world, id, snapshotId);
      a = await viaWorker();
    }
    drill.push(a.ms / 1000);
    measured.push(a.restoreSeconds);
    hand.push(b / 1000);
    ratio.push(a.ms / b);
    log(
      `drill rep ${rep + 1}: drill ${(a.ms / 1000).toFixed(1)} s (its restore ${a.restoreSeconds.toFixed(1)} s; ${Object.entries(
        phaseRuns.at(-1) ?? {},
      )
        .map(([phase, s]) => `${phase} ${s.toFixed(1)}`)
        .join(', ')}), by hand ${(b / 1000).toFixed(1)} s, ratio ${(a.ms / b).toFixed(2)}`,
    );
  }

  // Measurement 1's listing beside a drill (one more drill, not among the timed ones: the
  // load slows it): paced 50 req/s from 50 clients, p99, with no drill and while the drill
  // restores and imports, alternately.
  const listing = await listingLoad(world, quick ? 200 : 1000, 50);
  const loadSeconds = quick ? 2 : 8;
  const idleP99: number[] = [];
  const drillP99: number[] = [];
  for (let rep = 0; rep < (quick ? 1 : 2); rep++) {
    idleP99.push(quantile(await listing.paced(50, loadSeconds), 0.99));
    const running = viaWorker();
    // until the drill is at its heavy part: the download (and the import beside it)
    for (;;) {
      const phase = String(
        await world.sql(
          `select coalesce(phase, '') from ${world.dbName}.backup_jobs where customer_id = ${id} and kind = 'verify' and status = 'running' order by id desc limit 1`,
        ),
      ).trim();
      if (['DOWNLOADING', 'CHECKING_FILES', 'IMPORTING_DATABASE'].includes(phase)) break;
      await sleep(50);
    }
    drillP99.push(quantile(await listing.paced(50, loadSeconds), 0.99));
    await running;
    log(
      `listing beside a drill ${rep + 1}: p99 ${(drillP99.at(-1) ?? 0).toFixed(1)} ms, without ${(idleP99.at(-1) ?? 0).toFixed(1)} ms`,
    );
  }
  const figures: Figure[] = [
    {
      name: 'verifySnapshot → COMPLETED (api + queue + worker + script)',
      unit: 's',
      values: drill,
    },
    {
      name: "the drill's restoreSeconds (its download --verify + import, as shown to the customer)",
      unit: 's',
      values: measured,
    },
    { name: 'restic restore + mariadb import by hand', unit: 's', values: hand },
    {
      name: 'overall: drill / by hand',
      unit: 'x',
      values: ratio,
      target: '<= 1.2x',
      pass: spread(ratio).median <= 1.2,
    },
    {
      name: '`me { snapshots }` paced 50 req/s (50 clients), p99, no drill running',
      unit: 'ms',
      values: idleP99,
    },
    {
      name: "`me { snapshots }` paced 50 req/s (50 clients), p99, during the drill's download and import",
      unit: 'ms',
      values: drillP99,
      target: "< 15 ms (measurement 1's target)",
      pass: spread(drillP99).median < 15,
    },
  ];
  return {
    id: 8,
    title: 'Restore drill',
    setup: `The site of measurement 3 (scope BOTH), from its last worker backup. The drill runs from the verifySnapshot request (admin token) to COMPLETED, niced (nice 19, best-effort I/O 7), in the daily lane: ownership and space checks, restic restore --verify of the content folder and the dump into .verify/customer-N beside the site, a check of every listed entry (type, size, permissions, owner), the dump through a confined account into customer_N__verify of the drill's own database server (a throw-away mariadbd beside the sandbox, started for the drill at its nice: sandbox-db.sh), a check of its tables, removal of the sandbox and that server. By hand: restic restore (no --verify) + mariadb import into a new database. Order alternates; ${reps} repetitions.`,
    figures,
    notes: [`Drill by phase (median over the repetitions): ${phaseSummary(phaseRuns)}.`],
    limits:
      'The drill does more than the hand restore: --verify reads every restored file back and hashes it against the snapshot, every listed entry is compared with what was written (CHECKING_FILES), and the snapshot is listed (beside the download of the dump; VERIFYING waits for its first line, the snapshot itself); the dump comes down first, then its import runs beside the download of the files, as in a restore. The removal of the sandbox and the scratch database comes after COMPLETED and is not counted (the next repetition waits for it). Being niced it yields the CPU to everything else on the node, so on a shared machine its time depends on the other load.',
  };
}
