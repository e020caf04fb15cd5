// Measurement 6: browsing a backup (DESIGN.md §10). Indexing a snapshot of N files through the
// api, queue and worker (scripts/customer-index + the inserts), beside `restic ls --json` of the
// same snapshot, interleaved; then `entries(path)` folder listings over HTTP from 50 concurrent
// clients with many indexed snapshots in the catalog.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import { mapLimit, now, quantile, sleep, spread } from './stats.js';

/** The node of the browsed customer, whose worker runs in its own process. */
const BROWSE_NODE = 'bench-browse';

export interface BrowseSize {
  files: number;
  reps: number;
  /** Indexed catalog rows during the listing load (copies of a smaller index, see setup). */
  snapshots: number;
  /** Entries of each copied index. */
  copiedEntries: number;
  clients: number;
  requests: number;
  /** Open-loop rates (requests/s offered by all clients together) and how long each runs. */
  pacedRates: number[];
  pacedSeconds: number;
}

export const BROWSE_FULL: BrowseSize = {
  files: 20_000,
  reps: 3,
  snapshots: 1_000,
  copiedEntries: 1_000,
  clients: 50,
  requests: 5_000,
  pacedRates: [50, 200],
  pacedSeconds: 10,
};
export const BROWSE_QUICK: BrowseSize = {
  files: 2_000,
  reps: 2,
  snapshots: 50,
  copiedEntries: 200,
  clients: 50,
  requests: 500,
  pacedRates: [50],
  pacedSeconds: 3,
};

/** A content folder of `files` small files in folders of 50 (100 folders a level). */
async function buildFiles(content: string, files: number): Promise<string[]> {
  const folders: string[] = [];
  for (let i = 0; i < files; i++) {
    const folder = `wp-content/uploads/${String(Math.floor(i / 5000)).padStart(2, '0')}/${String(Math.floor(i / 50) % 100).padStart(2, '0')}`;
    if (i % 50 === 0) {
      folders.push(folder);
      await mkdir(path.join(content, folder), { recursive: true });
    }
    await writeFile(path.join(content, folder, `file-${i}.txt`), `file ${i}\n`);
  }
  return folders;
}

async function waitForJob(world: BenchWorld, jobId: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  // A plain query (no entity loaded): the bench's polling takes as little as it can of the
  // cores the indexing it times needs.
  const connection = world.orm.em.getConnection();
  for (;;) {
    const [job] = await connection.execute<{ status: string; error_message: string | null }[]>(
      'select status, error_message from backup_jobs where id = ?',
      [jobId],
    );
    if (job?.status === 'completed') return;
    if (job?.status === 'failed' || job?.status === 'cancelled') {
      throw new Error(`job ${jobId} ${job.status}: ${job.error_message}`);
    }
    if (Date.now() > until) throw new Error(`job ${jobId} did not end`);
    await sleep(20);
  }
}

export async function measureBrowse(
  world: BenchWorld,
  size: BrowseSize,
  log: (line: string) => void,
): Promise<Measurement> {
  // The customer's node has its worker in a process of its own, as in production.
  await world.startWorkerProcess(BROWSE_NODE);
  const customer = await world.customer({ host: BROWSE_NODE });
  const content = path.join(world.customersRoot, `customer-${customer.id}`, 'wordpress');
  const folders = await buildFiles(content, size.files);
  log(`browse: ${size.files} files in ${folders.length} folders`);
  const token = world.adminToken;
  const backup = await world.gql(
    `mutation($c: ID!) { createBackup(scope: FILES, customerId: $c) { ... on CreateBackupSuccess { job { id } } } }`,
    { c: String(customer.id) },
    token,
  );
  const backupJob = Number(backup.data?.createBackup?.job?.id);
  await waitForJob(world, backupJob, 600_000);
  const snapshotId = (await world.job(backupJob)).snapshotId as string;
  // The backup's retention (restic forget, an exclusive lock) runs after COMPLETED: wait for it.
  const settleBy = Date.now() + 120_000;
  while (!(await world.job(backupJob)).settledAt && Date.now() < settleBy) await sleep(50);
  const [row] = (await world.orm.em
    .getConnection()
    .execute('select id from snapshots where snapshot_id = ? and customer_id = ?', [
      snapshotId,
      customer.id,
    ])) as { id: number }[];
  if (!row) throw new Error('the backup is not in the catalog');

  const ls: number[] = [];
  const indexing: number[] = [];
  for (let rep = 0; rep < size.reps; rep++) {
    let t0 = now();
    const r = await execa('restic', ['ls', '--json', snapshotId], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...world.resticEnv(path.join(world.dataDir, 'repos', 'manual')),
      },
      extendEnv: false,
      stdout: 'ignore',
    });
    if (r.exitCode !== 0) throw new Error('restic ls failed');
    ls.push(now() - t0);

    // The index of the repetition before is dropped as eviction drops it (evictUnreadIndexes):
    // an INDEX job is queued only for a snapshot without an index (requestIndex), whose rows
    // eviction has removed, or an interrupted index left (the job's begin() removes those).
    const connection = world.orm.em.getConnection();
    await connection.execute(
      'update snapshots set indexed_at = null, index_entries = null where id = ?',
      [row.id],
    );
    await connection.execute('delete from snapshot_entries where snapshot_row_id = ?', [row.id]);
    await connection.execute('delete from snapshot_tables where snapshot_row_id = ?', [row.id]);
    t0 = now();
    const asked = await world.gql(
      `mutation($s: ID!, $c: ID!) { indexSnapshot(snapshotId: $s, customerId: $c) {
        __typename ... on IndexSnapshotSuccess { job { id } } ... on Error { message } } }`,
      { s: snapshotId, c: String(customer.id) },
      token,
    );
    const jobId = Number(asked.data?.indexSnapshot?.job?.id);
    if (!jobId) throw new Error(`indexSnapshot refused: ${JSON.stringify(asked.data)}`);
    await waitForJob(world, jobId, 600_000);
    indexing.push(now() - t0);
    log(
      `browse rep ${rep + 1}: restic ls ${ls.at(-1)?.toFixed(0)} ms, index ${indexing.at(-1)?.toFixed(0)} ms`,
    );
  }
  const ratios = indexing.map((ms, i) => ms / (ls[i] ?? ms));

  // Many indexed snapshots: more catalog rows (of this customer, under ids restic never made),
  // each with a copy of the first
  // `copiedEntries` entries of the real index (InnoDB's B-tree depth is what grows with them).
  const connection = world.orm.em.getConnection();
  // The copies come from a seed table: an INSERT ... SELECT from the table it writes makes
  // MariaDB build a temporary table in its tmpdir first (/tmp, shared with other work here).
  await connection.execute(
    `create table bench_seed_entries engine = InnoDB as
       select path_hash, parent_hash, kind_rank, name, path, type, size_bytes, mtime, mode
       from snapshot_entries where snapshot_row_id = ? order by path_hash limit ${size.copiedEntries}`,
    [row.id],
  );
  const ids: number[] = [row.id];
  for (let i = 1; i < size.snapshots; i++) {
    const fakeId = randomBytes(32).toString('hex');
    const inserted = (await connection.execute(
      `insert into snapshots (source, snapshot_id, short_id, customer_id, time, scope, label,
         size_bytes, paths, tags, synced_at, indexed_at, index_read_at)
       values ('manual', ?, ?, ?, utc_timestamp(), 'files', null, 1, '[]', '[]', utc_timestamp(), utc_timestamp(), utc_timestamp())`,
      [fakeId, fakeId.slice(0, 8), customer.id],
      'run',
    )) as { insertId: number };
    await connection.execute(
      `insert into snapshot_entries (snapshot_row_id, path_hash, parent_hash, kind_rank, name, path, type, size_bytes, mtime, mode)
       select ?, path_hash, parent_hash, kind_rank, name, path, type, size_bytes, mtime, mode
       from bench_seed_entries`,
      [inserted.insertId],
    );
    ids.push(inserted.insertId);
  }
  await connection.execute('drop table bench_seed_entries');
  const customerToken = await world.customerToken(customer.id);
  const query = `query($s: ID!, $p: String!) { me { snapshot(id: $s) { entries(path: $p) { entries { name sizeBytes modifiedAt } hasMore } } } }`;
  const listOnce = async (i: number) => {
    const folder = folders[(i * 7919) % folders.length] ?? '';
    const r = await world.gql(query, { s: snapshotId, p: folder }, customerToken);
    if (!r.data?.me?.snapshot?.entries) throw new Error(`listing failed: ${JSON.stringify(r)}`);
  };
  const latencies: number[] = [];
  const loadStart = now();
  await mapLimit(
    Array.from({ length: size.requests }, (_, i) => i),
    size.clients,
    async (i) => {
      const t0 = now();
      await listOnce(i);
      latencies.push(now() - t0);
    },
  );
  const loadSeconds = (now() - loadStart) / 1000;
  // Open loop, as measurement 1 paces its listing: each client sends on a fixed schedule
  // (every clients / rate seconds, its first at a random offset) whether or not its previous
  // request has answered; latency counts from the scheduled send.
  const paced: number[][] = [];
  for (const rate of size.pacedRates) {
    const out: number[] = [];
    const interval = (size.clients / rate) * 1000;
    const start = now();
    const end = start + size.pacedSeconds * 1000;
    const inFlight: Promise<void>[] = [];
    let n = 0;
    await Promise.all(
      Array.from({ length: size.clients }, async () => {
        let next = start + Math.random() * interval;
        while (next < end) {
          for (let wait = next - now(); wait > 0; wait = next - now()) await sleep(wait);
          const scheduled = next;
          inFlight.push(listOnce(n++).then(() => void out.push(now() - scheduled)));
          next += interval;
        }
      }),
    );
    await Promise.all(inFlight);
    paced.push(out);
    log(
      `browse paced ${rate}/s: p50 ${quantile(out, 0.5).toFixed(1)} ms, p99 ${quantile(out, 0.99).toFixed(1)} ms`,
    );
  }
  const [{ n: totalRows } = { n: 0 }] = (await connection.execute(
    'select count(*) as n from snapshot_entries',
  )) as { n: number }[];

  const figures: Figure[] = [
    { name: `restic ls --json, ${size.files} files`, unit: 'ms', values: ls },
    { name: `indexSnapshot -> COMPLETED, ${size.files} files`, unit: 'ms', values: indexing },
    {
      name: 'indexing / restic ls',
      unit: 'x',
      values: ratios,
      target: '<= 1.5',
      pass: spread(ratios).median <= 1.5,
    },
    {
      name: `folder listing p50, ${size.clients} clients (closed loop)`,
      unit: 'ms',
      values: [quantile(latencies, 0.5)],
    },
    {
      name: `folder listing p99, ${size.clients} clients (closed loop: back to back)`,
      unit: 'ms',
      values: [quantile(latencies, 0.99)],
      target: '< 30',
      pass: quantile(latencies, 0.99) < 30,
    },
    {
      name: 'folder listings per second (closed loop: saturation)',
      unit: '/s',
      values: [size.requests / loadSeconds],
    },
    ...size.pacedRates.flatMap((rate, k): Figure[] => [
      {
        name: `folder listing paced, ${size.clients} clients offering ${rate} req/s in all, p50`,
        unit: 'ms',
        values: [quantile(paced[k] ?? [], 0.5)],
      },
      {
        name: `folder listing paced, ${size.clients} clients offering ${rate} req/s in all, p99`,
        unit: 'ms',
        values: [quantile(paced[k] ?? [], 0.99)],
        target: '< 30',
        pass: quantile(paced[k] ?? [], 0.99) < 30,
      },
    ]),
  ];
  return {
    id: 9,
    title: 'Browsing a backup: indexing and folder listings',
    setup: `a site of ${size.files} files in folders of 50; indexing through the api, queue and worker (the customer's node's worker in a process of its own, as deploy/systemd runs it; customer-index: one restic ls, restic's own lines of the content folder passed to the worker while restic lists, inserted in batches as they come) beside a bare restic ls --json of the same snapshot, ${size.reps} repetitions interleaved, each from an evicted index (the one before removed as eviction removes it, outside the timing: a snapshot is indexed only while it has none); then ${size.requests} entries(path) requests over HTTP by ${size.clients} concurrent clients (a customer token, folders of 50 of the real index) with ${ids.length} indexed snapshots in the catalog (${ids.length - 1} copies of ${size.copiedEntries} entries each; ${totalRows} index rows in all), back to back (closed loop: the api's saturation), then paced at ${size.pacedRates.join(' and ')} requests/s in all for ${size.pacedSeconds} s each (open loop, as measurement 1)`,
    figures,
    limits:
      "indexing: restic ls itself (its first line, the snapshot's, comes only once restic has started: key derivation and the repository index; the tree walk after it is short), then the worker's inserts: customer-index passes restic's lines on as they come (no jq over them; the listing's ownership and layout are read while the last lines are stored) and the worker loads batches of up to 5,000 entries and 1 MB by LOAD DATA LOCAL INFILE (multi-row INSERTs where the server does not allow it), three in flight, which MariaDB writes into three indexes in about the time of the listing on this 2-core machine shared with other work; listing: two queries per request (the catalog row, then one keyset query on the folder index that also checks the folder), plain rows, behind the api process and graphql-yoga",
  };
}
