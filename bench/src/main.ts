// pnpm --filter @backups/bench start [-- --quick] [--only 1,3]
// Builds its own data, runs every measurement beside its baseline, writes data/bench/*.{json,md}.
import os from 'node:os';
import path from 'node:path';
import { freshManualRepository, measureBackup, runApiJob } from './backup.js';
import { BROWSE_FULL, BROWSE_QUICK, measureBrowse } from './browse.js';
import { CATALOG_FULL, CATALOG_QUICK, measureCatalog } from './catalog.js';
import { measureDownload } from './download.js';
import { measureDrill } from './drill.js';
import { type BenchWorld, cleanupAll, createBenchWorld, PROJECT_DIR } from './env.js';
import { LAYOUT_FULL, LAYOUT_QUICK, measureLayout } from './layout.js';
import { measurePartialRestore } from './partial-restore.js';
import { measureProgress, PROGRESS_FULL, PROGRESS_QUICK } from './progress.js';
import { measureQueue, QUEUE_FULL, QUEUE_QUICK } from './queue.js';
import {
  type Measurement,
  machineDescription,
  markdown,
  type Report,
  writeReport,
} from './report.js';
import { measureRepositories } from './repositories.js';
import { measureRestore } from './restore.js';
import { buildSite, SITE_FULL, SITE_QUICK } from './site.js';

const USAGE = `Usage: pnpm --filter @backups/bench start [-- options]
  --quick        a small smoke run (< 2 minutes); default: the full sizes
  --only 1,2,5   run only these measurements
                 (1 catalog listing, 2 progress delivery, 3 backup, 4 restore, 5 queue,
                  6 restoring one file, 7 sftp and rest-server repositories, 8 restore drill,
                  9 browsing a backup, 10 downloads, 11 repository layout at 10,000 customers)
  --help`;

const MAX_MEASUREMENT = 11;

interface Options {
  quick: boolean;
  only: Set<number>;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, only: new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') continue;
    if (arg === '--quick') options.quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice(7) : (argv[++i] ?? '');
      options.only = new Set(value.split(',').map(Number));
      if ([...options.only].some((n) => !(n >= 1 && n <= MAX_MEASUREMENT))) throw new Error(USAGE);
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`Unknown option ${arg}\n${USAGE}`);
  }
  return options;
}

/** The measurements made on the bench site (built once for all of them), in order. */
const SITE_MEASUREMENTS = [3, 4, 6, 7, 8, 10];
const wantsSite = (options: Options) => SITE_MEASUREMENTS.some((n) => options.only.has(n));

const started = Date.now();
const log = (line: string) => {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${line}\n`);
};

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const mode = options.quick ? 'quick' : 'full';
  log(`benchmark (${mode}), measurements ${[...options.only].join(',')}`);
  const report: Report = {
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    mode,
    machine: machineDescription(),
    loadAverage: { start: os.loadavg()[0] ?? 0, end: 0 },
    measurements: [],
  };
  let world: BenchWorld | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // While cleaning up after a signal, work still in flight fails; that must not end the
  // process before the cleanup is done.
  process.on('unhandledRejection', (error) => {
    log(`unhandled: ${error instanceof Error ? error.message : String(error)}`);
  });

  try {
    world = await createBenchWorld(log);
    log(`world ready: database ${world.dbName}, data ${world.dataDir}, api pid ${world.api.pid}`);
    const steps: [number, string, (w: BenchWorld) => Promise<Measurement | null>][] = [
      [
        1,
        "Listing a customer's snapshots",
        (w) => measureCatalog(w, options.quick ? CATALOG_QUICK : CATALOG_FULL, log),
      ],
      [
        2,
        'Progress delivery (jobUpdated over graphql-ws)',
        (w) => measureProgress(w, options.quick ? PROGRESS_QUICK : PROGRESS_FULL, log),
      ],
      [
        5,
        'Queue and api under load',
        (w) => measureQueue(w, options.quick ? QUEUE_QUICK : QUEUE_FULL, log),
      ],
    ];
    steps.push([
      9,
      'Browsing a backup: indexing and folder listings',
      (w) => measureBrowse(w, options.quick ? BROWSE_QUICK : BROWSE_FULL, log),
    ]);
    steps.push([
      11,
      'Repository layout at 10,000 customers',
      (w) => measureLayout(w, options.quick ? LAYOUT_QUICK : LAYOUT_FULL, log),
    ]);
    const siteSteps = async (w: BenchWorld): Promise<void> => {
      if (!wantsSite(options)) return;
      const backupReps = options.quick ? 2 : 3;
      const restoreReps = options.quick ? 2 : 3;
      log(
        `--- building the site for ${SITE_MEASUREMENTS.filter((n) => options.only.has(n)).join(', ')}`,
      );
      const site = await buildSite(w, options.quick ? SITE_QUICK : SITE_FULL);
      log(`site: ${site.files} files, database customer_${site.customer.id}`);
      if (options.only.has(7)) {
        log('--- 7. Backup and restore through sftp and rest-server');
        report.measurements.push(await measureRepositories(w, site, options.quick ? 1 : 2, log));
      }
      if (![3, 4, 6, 8, 10].some((n) => options.only.has(n))) return;
      let lastJobId = 0;
      if (options.only.has(3)) {
        log('--- 3. Backup overhead');
        const backup = await measureBackup(w, site, backupReps, log);
        report.measurements.push(backup.measurement);
        lastJobId = backup.lastJobId;
      } else {
        await freshManualRepository(w);
        lastJobId = (
          await runApiJob(
            w,
            'mutation($c: ID!) { createBackup(scope: BOTH, customerId: $c) { $JOB } }',
            { c: String(site.customer.id) },
            3600_000,
          )
        ).jobId;
      }
      const snapshotId = (await w.job(lastJobId)).snapshotId;
      if (!snapshotId) throw new Error('the backup recorded no snapshot');
      if (options.only.has(4)) {
        log('--- 4. Restore');
        report.measurements.push(await measureRestore(w, site, snapshotId, restoreReps, log));
      }
      if (options.only.has(6)) {
        log('--- 6. Restoring one file');
        report.measurements.push(
          await measurePartialRestore(w, site, snapshotId, options.quick ? 2 : 5, log),
        );
      }
      if (options.only.has(8)) {
        log('--- 8. Restore drill');
        report.measurements.push(
          await measureDrill(w, site, snapshotId, restoreReps, log, options.quick),
        );
      }
      if (options.only.has(10)) {
        log('--- 10. Downloads');
        report.measurements.push(
          await measureDownload(w, site, snapshotId, options.quick ? 2 : 3, log),
        );
      }
    };
    steps.push([
      3,
      'Backup overhead and restore',
      async (w) => {
        await siteSteps(w);
        return null;
      },
    ]);
    for (const [id, title, run] of steps) {
      if (interrupted) continue;
      if (id === 3 ? !wantsSite(options) : !options.only.has(id)) continue;
      log(`--- ${id}. ${title}`);
      try {
        const measurement = await run(world);
        if (measurement) report.measurements.push(measurement);
      } catch (error) {
        log(
          `measurement ${id} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
        report.measurements.push({
          id,
          title,
          setup: '',
          figures: [],
          limits: '',
          // The first lines only: a failed command's message carries its whole output.
          error: (error instanceof Error ? error.message : String(error))
            .split('\n')
            .slice(0, 3)
            .join(' ')
            .slice(0, 500),
        });
      }
    }
  } finally {
    log('cleaning up');
    await cleanupAll();
  }
  report.finishedAt = new Date().toISOString();
  report.loadAverage.end = os.loadavg()[0] ?? 0;
  const files = await writeReport(path.join(PROJECT_DIR, 'data', 'bench'), report);
  process.stdout.write(markdown(report));
  log(`reports: ${files.md}, ${files.json}`);
  return report.measurements.some((m) => m.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
