// Measurement 6: the same backup and restore of the bench site through each kind of
// repository: a local folder (the baseline), sftp: through OpenSSH's sshd and rest: through
// rest-server over TLS, both on loopback (server/test/support/repository-servers.ts). The
// scripts are run directly (scripts/customer-backup, scripts/customer-restore), each into a
// fresh repository, the kinds interleaved in every repetition, so the ratios show what the
// transport costs and nothing else.
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import {
  type RepositoryHost,
  type RepositoryKind,
  repositoryHost,
} from '../../server/test/support/repository-servers.js';
import { script } from '../../server/test/support/sandbox.js';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import type { BenchSite } from './site.js';
import { now, spread } from './stats.js';

const KINDS: RepositoryKind[] = ['local', 'sftp', 'rest'];

async function runScript(env: Record<string, string>, name: string, args: string[]) {
  const r = await execa(script(name), args, { env, extendEnv: false, reject: false });
  if (r.exitCode !== 0)
    throw new Error(`${name} ${args.join(' ')} failed: ${r.stderr.slice(-800)}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; id?: string; kind?: string });
}

export async function measureRepositories(
  world: BenchWorld,
  site: BenchSite,
  reps: number,
  log: (line: string) => void,
): Promise<Measurement> {
  const id = String(site.customer.id);
  const times: Record<RepositoryKind, { backup: number[]; restore: number[] }> = {
    local: { backup: [], restore: [] },
    sftp: { backup: [], restore: [] },
    rest: { backup: [], restore: [] },
  };
  const load: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    // rotate the order, so no kind always runs first (cold caches) or last
    const order = KINDS.map((_, i) => KINDS[(i + rep) % KINDS.length] as RepositoryKind);
    for (const kind of order) {
      const dir = path.join(world.dataDir, `repository-${kind}-${rep}`);
      await mkdir(path.join(dir, 'secrets'), { recursive: true, mode: 0o700 });
      let host: RepositoryHost | undefined;
      try {
        host = await repositoryHost(kind, dir);
        const env = {
          ...world.scriptEnv,
          BACKUPS_DATA_DIR: dir,
          BACKUPS_WORK_DIR: path.join(dir, 'work'),
          BACKUPS_RESTIC_CACHE_DIR: path.join(dir, 'cache'),
          BACKUPS_MANUAL_PASSWORD_FILE: path.join(dir, 'secrets/manual-repository.pass'),
          BACKUPS_DAILY_PASSWORD_FILE: path.join(dir, 'secrets/daily-repository.pass'),
          BACKUPS_SAFETY_REPOSITORY: '',
          BACKUPS_SAFETY_PASSWORD_FILE: '',
          ...host.node.env,
        };
        await runScript(env, 'backup-repository', ['manual', 'init']);
        load.push(os.loadavg()[0] ?? 0);
        let t0 = now();
        const events = await runScript(env, 'customer-backup', [id, 'both']);
        times[kind].backup.push((now() - t0) / 1000);
        const snapshot = events.find((e) => e.type === 'snapshot' && e.kind === 'result')?.id;
        if (!snapshot) throw new Error(`${kind}: no snapshot`);
        t0 = now();
        await runScript(env, 'customer-restore', [id, snapshot, 'both', 'manual']);
        times[kind].restore.push((now() - t0) / 1000);
        log(
          `  ${kind} rep ${rep + 1}: backup ${times[kind].backup.at(-1)?.toFixed(1)} s, restore ${times[kind].restore.at(-1)?.toFixed(1)} s`,
        );
      } finally {
        await host?.destroy();
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  const figures: Figure[] = [];
  for (const step of ['backup', 'restore'] as const) {
    for (const kind of KINDS) {
      figures.push({ name: `${step} through ${kind}`, unit: 's', values: times[kind][step] });
    }
    for (const kind of ['sftp', 'rest'] as const) {
      figures.push({
        name: `${step}: ${kind} / local`,
        unit: 'x',
        values: times[kind][step].map((v, i) => v / (times.local[step][i] ?? Number.NaN)),
      });
    }
  }
  const l = spread(load);
  return {
    id: 7,
    title: 'Backup and restore through sftp and rest-server, as ratios of a local repository',
    setup: `the bench site (${site.files} files, ${(site.filesBytes / 2 ** 20).toFixed(0)} MiB, database ${(site.databaseBytes / 1e6).toFixed(0)} MB); scripts/customer-backup <id> both into a fresh repository, then scripts/customer-restore of that snapshot (undo point included), per kind, kinds interleaved over ${reps} repetitions; sshd and rest-server (TLS, bcrypt htpasswd, --private-repos) on loopback; 1-minute load average at the starts ${l.min.toFixed(1)} / ${l.median.toFixed(1)} / ${l.max.toFixed(1)}`,
    figures,
    limits:
      'Loopback has no network latency or bandwidth limit: the ratios are what the transports cost in CPU (ssh encryption and the sftp protocol; TLS, HTTP and rest-server writing the files) on a shared 2-core machine, a floor for a real backup host. The restore also stores an undo point of the site into the same repository.',
  };
}
