// The invariants checked after the settle period, each reported on its own (DESIGN.md §15).
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { SnapshotRecord, TrackedJob, Violation } from './main.js';
import type { Log } from './services.js';
import { readSiteState, type SiteState, stateKey } from './state.js';
import type { Site, World } from './world.js';

export interface InvariantResult {
  name: string;
  ok: boolean;
  detail: string;
}

interface Track {
  site: Site;
  known: Map<string, SiteState>;
}

const list = async (dir: string) => (existsSync(dir) ? await readdir(dir) : []);

export async function checkInvariants(deps: {
  world: World;
  jobs: Map<number, TrackedJob>;
  tracks: Map<number, Track>;
  snapshots: Map<string, SnapshotRecord>;
  violations: Violation[];
  violate: (invariant: string, detail: string) => void;
  log: Log;
}): Promise<InvariantResult[]> {
  const { world, tracks, violate } = deps;
  const results: InvariantResult[] = [];
  const check = async (name: string, body: () => Promise<string[]>, summary = '') => {
    let problems: string[];
    try {
      problems = await body();
    } catch (error) {
      problems = [
        `could not be checked: ${error instanceof Error ? error.message : String(error)}`,
      ];
    }
    for (const p of problems) violate(name, p);
    results.push({
      name,
      ok: problems.length === 0,
      detail: problems.length ? `${problems.length} problem(s)` : summary,
    });
    deps.log(
      `invariant ${name}: ${problems.length === 0 ? 'ok' : `${problems.length} problem(s)`}`,
    );
  };
  const sql = (s: string) => world.db.sql(s);

  await check('every job terminal', async () => {
    const rows = await sql(
      `SELECT id, kind, status, phase FROM ${world.dbName}.backup_jobs WHERE status IN ('pending','running')`,
    );
    return rows
      .split('\n')
      .filter(Boolean)
      .map((r) => `job ${r.replaceAll('\t', ' ')} is not ended`);
  });

  await check('no site in maintenance', async () =>
    world.sites
      .filter((s) => existsSync(path.join(s.dir, '.maintenance')))
      .map((s) => `customer ${s.id} has .maintenance`),
  );

  await check(
    'every site in one known state',
    async () => {
      const out: string[] = [];
      for (const site of world.sites) {
        const state = await readSiteState(world.db, site.dir, site.id);
        const t = tracks.get(site.id) as Track;
        if (!t.known.has(stateKey(state)))
          out.push(
            `customer ${site.id}: files and database match none of the ${t.known.size} states the run knows`,
          );
      }
      return out;
    },
    `${world.sites.length} sites`,
  );

  await check('catalog equals the repositories', async () => {
    const out: string[] = [];
    for (const [kind, sources] of [
      ['manual', "'manual','safety'"],
      ['daily', "'daily'"],
    ] as const) {
      const r = world.resticFor(kind);
      const listed = await execa('restic', [...r.args, 'snapshots', '--json', '--no-lock'], {
        env: r.env,
        extendEnv: false,
      });
      const inRepo = new Set(
        (JSON.parse(listed.stdout || '[]') as { id: string }[]).map((s) => s.id),
      );
      const rows = await sql(
        `SELECT DISTINCT snapshot_id FROM ${world.dbName}.snapshots WHERE source IN (${sources})`,
      );
      const inCatalog = new Set(rows.split('\n').filter(Boolean));
      for (const id of inRepo)
        if (!inCatalog.has(id)) out.push(`${kind}: ${id} is in the repository, not in the catalog`);
      for (const id of inCatalog)
        if (!inRepo.has(id)) out.push(`${kind}: ${id} is in the catalog, not in the repository`);
    }
    return out;
  });

  await check('nothing left behind', async () => {
    const out: string[] = [];
    const scratch = await sql(
      "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'customer\\_%\\_\\_%'",
    );
    for (const s of scratch.split('\n').filter(Boolean)) out.push(`scratch database ${s}`);
    for (const e of await list(path.join(world.workDir, 'tmp')))
      out.push(`staging folder work/tmp/${e}`);
    for (const e of await list(path.join(world.workDir, 'dumps'))) {
      const inside = await list(path.join(world.workDir, 'dumps', e));
      if (inside.length > 0) out.push(`staging dump work/dumps/${e}: ${inside.join(', ')}`);
    }
    for (const e of await list(path.join(world.customersRoot, '.verify')))
      out.push(`sandbox .verify/${e}`);
    // a drill's own database server (scripts/lib/sandbox-db.sh), also one whose folder went
    const servers = await execa(
      'pgrep',
      ['-af', '--', `--datadir=${path.join(world.customersRoot, '.verify')}/`],
      { reject: false },
    );
    for (const line of servers.stdout.split('\n').filter(Boolean))
      out.push(`a drill's database server still running: ${line.slice(0, 160)}`);
    for (const site of world.sites) {
      for (const e of await list(site.dir)) {
        if (e !== 'wordpress' && e !== 'docker-compose.yml')
          out.push(`customer ${site.id}: ${e} in the site folder`);
      }
    }
    const live = new Set(
      (
        await sql(
          `SELECT file_name FROM ${world.dbName}.downloads WHERE status = 'ready' AND revoked_at IS NULL AND file_removed_at IS NULL AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP())`,
        )
      )
        .split('\n')
        .filter(Boolean),
    );
    for (const f of await list(world.downloadDir)) {
      if (!live.has(f)) out.push(`download file ${f} with no live download`);
    }
    return out;
  });

  // The run never damages a repository, so every backup it made is restorable: a drill that
  // says otherwise is a false alarm (the customer would be told their backup is broken, and
  // the operator alerted, because the drill's own tools were killed or its disk filled).
  await check('no false drill verdict', async () => {
    const rows = await sql(
      `SELECT job_id, customer_id, left(snapshot_id, 8), problem FROM ${world.dbName}.snapshot_verifications WHERE status = 'failed'`,
    );
    return rows
      .split('\n')
      .filter(Boolean)
      .map((r) => {
        const [job, customer, snapshot, problem] = r.split('\t');
        return `job ${job} (customer ${customer}) judged snapshot ${snapshot} broken: ${problem}`;
      });
  });

  for (const name of ['isolation', 'api answered']) {
    const mine = deps.violations.filter((v) => v.invariant === name);
    results.push({
      name,
      ok: mine.length === 0,
      detail: mine.length ? `${mine.length} problem(s)` : '',
    });
  }
  return results;
}
