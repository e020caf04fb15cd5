// Measurement 1: listing a customer's snapshots. `me { snapshots }` over HTTP (the catalog in
// MySQL, 10,000 customers x 35 rows) under 50 concurrent clients, beside the original plan's
// `restic snapshots --json --tag customer-<id>,manual` on a repository of 500+ snapshots.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Pool } from 'undici';
import type { ApiProcess, BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import { mapLimit, now, quantile, sleep, spread } from './stats.js';

export interface CatalogSize {
  customers: number;
  clients: number;
  tokens: number;
  loadSeconds: number;
  resticSnapshots: number;
  resticCustomers: number;
  resticCallsPerRound: number;
  rounds: number;
  /** Paced (open-loop) loads: total requests per second offered by the 50 clients. */
  pacedRates: number[];
}

export const CATALOG_FULL: CatalogSize = {
  customers: 10_000,
  clients: 50,
  tokens: 200,
  loadSeconds: 5,
  resticSnapshots: 500,
  resticCustomers: 100,
  resticCallsPerRound: 4,
  rounds: 3,
  pacedRates: [50, 200, 400],
};
export const CATALOG_QUICK: CatalogSize = {
  customers: 1_000,
  clients: 50,
  tokens: 50,
  loadSeconds: 1.5,
  resticSnapshots: 12,
  resticCustomers: 4,
  resticCallsPerRound: 2,
  rounds: 2,
  pacedRates: [50, 200],
};

const BASELINE_LABEL = 'baseline build, 1 process';

const QUERY = '{ me { snapshots { id shortId source scope createdAt label sizeBytes } } }';
const MANUAL_ROWS = 5;
const DAILY_ROWS = 30;

function mysqlTime(date: Date): string {
  return date.toISOString().slice(0, 23).replace('T', ' ');
}

/** Bulk INSERTs: customers, then 5 manual + 30 daily catalog rows each. */
async function fillCatalog(world: BenchWorld, count: number): Promise<number[]> {
  const conn = world.orm.em.getConnection();
  const created = mysqlTime(new Date());
  const tag = randomBytes(4).toString('hex');
  for (let start = 0; start < count; start += 1000) {
    const rows: string[] = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      rows.push(
        `('catalog-${tag}-${i}@example.test', 'Catalog ${i}', 'not-a-real-hash', 'catalog', 'wordpress', '${created}')`,
      );
    }
    await conn.execute(
      `insert into customers (email, name, password_hash, host, site_layout, created_at) values ${rows.join(',')}`,
    );
  }
  const ids = (
    await conn.execute<{ id: number }[]>(
      `select id from customers where email like 'catalog-${tag}-%' order by id`,
    )
  ).map((r) => Number(r.id));

  const dayMs = 86_400_000;
  const today = Date.now();
  const rowsFor = (customerId: number): string[] => {
    const out: string[] = [];
    const add = (source: string, time: Date, label: string | null) => {
      const id = randomBytes(32).toString('hex');
      const tags = JSON.stringify([`customer-${customerId}`, source, 'both']);
      out.push(
        `('${source}', '${id}', '${id.slice(0, 8)}', ${customerId}, '${mysqlTime(time)}', 'both', ${label ? `'${label}'` : 'null'}, ${1_000_000 + (customerId % 1000) * 1000}, '["/srv/customers/customer-${customerId}"]', '${tags}', null, '${created}')`,
      );
    };
    for (let m = 0; m < MANUAL_ROWS; m++) {
      add('manual', new Date(today - m * 3 * 3600_000 - 60_000), `before update ${m}`);
    }
    for (let d = 0; d < DAILY_ROWS; d++) add('daily', new Date(today - d * dayMs - 3600_000), null);
    return out;
  };
  const perInsert = 60; // customers per statement: 2,100 rows
  const batches: number[][] = [];
  for (let i = 0; i < ids.length; i += perInsert) batches.push(ids.slice(i, i + perInsert));
  await mapLimit(batches, 4, async (batch) => {
    await conn.execute(
      `insert into snapshots (source, snapshot_id, short_id, customer_id, time, scope, label, size_bytes, paths, tags, created_by_job_id, synced_at) values ${batch.flatMap(rowsFor).join(',')}`,
    );
  });
  return ids;
}

/** A repository like the plan's: many tiny snapshots tagged customer-<id>,manual. */
async function fillResticRepository(
  world: BenchWorld,
  repo: string,
  size: CatalogSize,
  customerIds: number[],
): Promise<void> {
  const env = world.resticEnv(repo);
  await execa('restic', ['init'], { env, extendEnv: true });
  const jobs = Array.from({ length: size.resticSnapshots }, (_, i) => i);
  await mapLimit(jobs, 4, async (i) => {
    const customer = customerIds[i % size.resticCustomers] as number;
    await execa(
      'restic',
      [
        'backup',
        '--quiet',
        '--stdin',
        '--stdin-filename',
        `customer_${customer}.sql`,
        '--tag',
        `customer-${customer},manual,both`,
        '--host',
        'bench',
      ],
      {
        env,
        extendEnv: true,
        input: `-- dump ${customer} ${i} ${randomBytes(8).toString('hex')}\n`,
      },
    );
  });
}

interface LoadResult {
  latencies: number[];
  requests: number;
  errors: number;
  seconds: number;
}

const LIST_BODY = JSON.stringify({ query: QUERY, variables: {} });

/** One `me { snapshots }` request; true when it answered 200 with a non-empty list. */
async function listOnce(pool: Pool, token: string): Promise<boolean> {
  try {
    const response = await pool.request({
      path: '/graphql',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: LIST_BODY,
    });
    const text = await response.body.text();
    return response.statusCode === 200 && text.includes('"snapshots":[{');
  } catch {
    return false;
  }
}

/** `clients` concurrent loops, each sending the next request when the previous answered. */
async function httpLoad(
  pool: Pool,
  tokens: string[],
  clients: number,
  seconds: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let i = c;
      while (now() < end) {
        const t0 = now();
        if (await listOnce(pool, tokens[i++ % tokens.length] as string)) {
          latencies.push(now() - t0);
        } else errors++;
      }
    }),
  );
  return {
    latencies,
    requests: latencies.length + errors,
    errors,
    seconds: (now() - start) / 1000,
  };
}

/**
 * Open loop: each of `clients` sends a request every `clients / rate` seconds on a fixed
 * schedule (its first at a random offset), whether or not its previous one has answered, so a
 * slow answer does not slow the offered load down. Latency counts from the scheduled send.
 */
async function pacedLoad(
  pool: Pool,
  tokens: string[],
  clients: number,
  rate: number,
  seconds: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = now();
  const end = start + seconds * 1000;
  const interval = (clients / rate) * 1000;
  const inFlight: Promise<void>[] = [];
  const send = async (token: string, scheduled: number) => {
    if (await listOnce(pool, token)) latencies.push(now() - scheduled);
    else errors++;
  };
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let next = start + Math.random() * interval;
      let i = c;
      while (next < end) {
        // setTimeout counts whole milliseconds and may fire up to 1 ms early: wait again until
        // the scheduled time, so that no request leaves before it and looks faster than it was.
        for (let wait = next - now(); wait > 0; wait = next - now()) await sleep(wait);
        inFlight.push(send(tokens[i++ % tokens.length] as string, next));
        next += interval;
      }
    }),
  );
  await Promise.all(inFlight);
  return {
    latencies,
    requests: latencies.length + errors,
    errors,
    seconds: (now() - start) / 1000,
  };
}

/**
 * Measurement 1's paced listing load, for another measurement to run beside its own work (a
 * drill must not starve the api): `customers` catalog customers of 35 rows, `clients`
 * clients with a token each, through the bench's api.
 */
export async function listingLoad(
  world: BenchWorld,
  customers: number,
  clients: number,
): Promise<{ paced(rate: number, seconds: number): Promise<number[]> }> {
  const ids = await fillCatalog(world, customers);
  const tokens = await mapLimit(
    Array.from(
      { length: clients },
      (_, i) => ids[Math.floor((i * ids.length) / clients)] as number,
    ),
    8,
    (id) => world.customerToken(id),
  );
  await httpLoad(world.api.pool, tokens, clients, 1);
  return {
    async paced(rate, seconds) {
      const load = await pacedLoad(world.api.pool, tokens, clients, rate, seconds);
      if (load.errors) throw new Error(`${load.errors} listing requests failed`);
      return load.latencies;
    },
  };
}

export async function measureCatalog(
  world: BenchWorld,
  size: CatalogSize,
  log: (line: string) => void,
): Promise<Measurement> {
  // BENCH_CATALOG_ROUNDS=n: more rounds (an A/B of builds on a busy machine wants many).
  const rounds = Number(process.env.BENCH_CATALOG_ROUNDS ?? '');
  if (Number.isInteger(rounds) && rounds > 0) size = { ...size, rounds };
  let t = now();
  const ids = await fillCatalog(world, size.customers);
  log(
    `catalog: ${ids.length} customers, ${ids.length * 35} snapshot rows in ${((now() - t) / 1000).toFixed(1)} s`,
  );
  const tokenCustomers = Array.from(
    { length: size.tokens },
    (_, i) => ids[Math.floor((i * ids.length) / size.tokens)] as number,
  );
  const tokens = await mapLimit(tokenCustomers, 8, (id) => world.customerToken(id));

  const repo = path.join(world.dataDir, 'repos', 'plan-manual');
  await mkdir(path.dirname(repo), { recursive: true });
  t = now();
  const resticCustomers = ids.slice(0, size.resticCustomers);
  await fillResticRepository(world, repo, size, resticCustomers);
  log(
    `catalog: restic repository with ${size.resticSnapshots} snapshots in ${((now() - t) / 1000).toFixed(1)} s`,
  );
  const env = world.resticEnv(repo);
  const resticList = async (customer: number) => {
    const t0 = now();
    const r = await execa(
      'restic',
      ['snapshots', '--json', '--tag', `customer-${customer},manual`],
      { env, extendEnv: true },
    );
    const listed = JSON.parse(r.stdout) as unknown[];
    if (listed.length === 0) throw new Error('restic listed no snapshots');
    return now() - t0;
  };

  // The same load on 2 api processes (BACKUPS_API_PROCESSES=2, node:cluster on one port), and
  // on a Node HTTP server that answers every request with the same bytes at once: what this
  // machine and this load generator give when the server does no work at all.
  const processes = (n: number) => `${n} api process${n === 1 ? '' : 'es'}`;
  const apis: { label: string; api: ApiProcess }[] = [
    { label: processes(world.api.processes), api: world.api },
  ];
  if (world.api.processes === 1) {
    apis.push({
      label: processes(2),
      api: await world.startApi({ BACKUPS_API_PROCESSES: '2' }),
    });
  }
  // BENCH_API_BASELINE=<another build's server/src/main/api.js>: that build too, 1 process, in
  // the same rounds (an A/B of two builds on one world, on a machine too noisy to compare runs).
  const baseline = process.env.BENCH_API_BASELINE;
  if (baseline) {
    apis.push({ label: BASELINE_LABEL, api: await world.startApi({}, baseline) });
  }
  const sample = await world.api.pool.request({
    path: '/graphql',
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
    body: LIST_BODY,
  });
  const answer = Buffer.from(await sample.body.arrayBuffer());
  const echo = await startEchoServer(world, answer);
  const echoPool = new Pool(echo.origin, { connections: 64, pipelining: 1 });
  world.onCleanup(() => echoPool.close());
  const mariadbPid = Number(
    (await execa('pgrep', ['-o', '-x', 'mariadbd'], { reject: false })).stdout.trim() || 0,
  );

  // Warm everything up once (restic fills its cache; the apis their pools and query plans).
  await resticList(resticCustomers[0] as number);
  for (const { api } of apis) await httpLoad(api.pool, tokens, size.clients, 1);
  await httpLoad(echoPool, tokens, size.clients, 1);

  interface Series {
    p50: number[];
    p99: number[];
    rps: number[];
    ratioP50: number[];
    /** restic / the api's p50 at the first paced rate: latency at that load, no queueing. */
    ratioPaced: number[];
    apiCpu: number[];
    dbCpu: number[];
    benchCpu: number[];
    pacedP50: number[][];
    pacedP99: number[][];
  }
  const series = apis.map(
    (): Series => ({
      p50: [],
      p99: [],
      rps: [],
      ratioP50: [],
      ratioPaced: [],
      apiCpu: [],
      dbCpu: [],
      benchCpu: [],
      pacedP50: size.pacedRates.map(() => []),
      pacedP99: size.pacedRates.map(() => []),
    }),
  );
  const echoP99 = size.pacedRates.map((): number[] => []);
  const resticMs: number[] = [];
  const singleP50: number[] = [];
  const ratioSingle: number[] = [];
  let errors = 0;
  let requests = 0;
  const count = (load: LoadResult) => {
    errors += load.errors;
    requests += load.requests;
  };
  for (let round = 0; round < size.rounds; round++) {
    // One client alone: a request's own service time, without 49 others queued before it.
    const alone = await httpLoad(world.api.pool, tokens, 1, Math.min(2, size.loadSeconds));
    count(alone);
    const aloneP50 = quantile(alone.latencies, 0.5);
    singleP50.push(aloneP50);
    const calls: number[] = [];
    for (let k = 0; k < size.resticCallsPerRound; k++) {
      const customer = resticCustomers[(round * 7 + k * 3) % resticCustomers.length] as number;
      calls.push(await resticList(customer));
    }
    const roundRestic = spread(calls).median;
    resticMs.push(roundRestic);
    ratioSingle.push(roundRestic / aloneP50);

    const line: string[] = [];
    // Alternate which configuration goes first, so neither always runs right after restic.
    const order = round % 2 === 0 ? apis.map((_, i) => i) : apis.map((_, i) => apis.length - 1 - i);
    for (const i of order) {
      const { api, label } = apis[i] as (typeof apis)[number];
      const out = series[i] as Series;
      const pids = await api.pids();
      const apiBefore = await cpuMs(pids);
      const dbBefore = await cpuMs([mariadbPid]);
      const benchBefore = process.cpuUsage();
      const load = await httpLoad(api.pool, tokens, size.clients, size.loadSeconds);
      const bench = process.cpuUsage(benchBefore);
      const dbAfter = await cpuMs([mariadbPid]);
      const apiAfter = await cpuMs(pids);
      count(load);
      const served = load.latencies.length;
      out.apiCpu.push((apiAfter - apiBefore) / served);
      out.dbCpu.push((dbAfter - dbBefore) / served);
      out.benchCpu.push((bench.user + bench.system) / 1000 / served);
      const p50 = quantile(load.latencies, 0.5);
      out.p50.push(p50);
      out.p99.push(quantile(load.latencies, 0.99));
      out.rps.push(served / load.seconds);
      out.ratioP50.push(roundRestic / p50);
      const paced: string[] = [];
      for (const [k, rate] of size.pacedRates.entries()) {
        const result = await pacedLoad(api.pool, tokens, size.clients, rate, size.loadSeconds);
        count(result);
        const pacedP50 = quantile(result.latencies, 0.5);
        out.pacedP50[k]?.push(pacedP50);
        if (k === 0) out.ratioPaced.push(roundRestic / pacedP50);
        const p99 = quantile(result.latencies, 0.99);
        out.pacedP99[k]?.push(p99);
        paced.push(`${rate}/s ${p99.toFixed(1)}`);
      }
      line.push(
        `${label}: closed p50 ${p50.toFixed(1)} p99 ${(out.p99.at(-1) ?? 0).toFixed(1)} ms ${(served / load.seconds).toFixed(0)} req/s, cpu ${(out.apiCpu.at(-1) ?? 0).toFixed(2)} + db ${(out.dbCpu.at(-1) ?? 0).toFixed(2)} ms/req; paced p99 ${paced.join(', ')} ms`,
      );
    }
    const echoLine: string[] = [];
    for (const [k, rate] of size.pacedRates.entries()) {
      const result = await pacedLoad(echoPool, tokens, size.clients, rate, size.loadSeconds);
      count(result);
      const p99 = quantile(result.latencies, 0.99);
      echoP99[k]?.push(p99);
      echoLine.push(`${rate}/s ${p99.toFixed(1)}`);
    }
    log(
      `catalog round ${round + 1}: 1 client p50 ${aloneP50.toFixed(1)} ms; restic ${roundRestic.toFixed(0)} ms; ${line.join('; ')}; do-nothing server paced p99 ${echoLine.join(', ')} ms`,
    );
  }

  for (const { api } of apis.slice(1)) await api.stop();
  echo.stop();

  const figures: Figure[] = [];
  for (const [i, { label }] of apis.entries()) {
    const out = series[i] as Series;
    figures.push(
      { name: `${label}: \`me { snapshots }\` p50 (closed loop)`, unit: 'ms', values: out.p50 },
      {
        name: `${label}: \`me { snapshots }\` p99 (closed loop: ${size.clients} back-to-back clients)`,
        unit: 'ms',
        values: out.p99,
        target: '< 15 ms',
        pass: spread(out.p99).median < 15,
      },
      {
        name: `${label}: requests per second (closed loop: saturation)`,
        unit: 'req/s',
        values: out.rps,
      },
      { name: `${label}: api CPU time per request (closed loop)`, unit: 'ms', values: out.apiCpu },
      {
        name: `${label}: MariaDB CPU time per request (closed loop)`,
        unit: 'ms',
        values: out.dbCpu,
      },
      {
        name: `${label}: load generator CPU time per request (closed loop)`,
        unit: 'ms',
        values: out.benchCpu,
      },
      ...size.pacedRates.flatMap((rate, k): Figure[] => [
        {
          name: `${label}: paced, ${size.clients} clients offering ${rate} req/s in all, p50`,
          unit: 'ms',
          values: out.pacedP50[k] ?? [],
        },
        {
          name: `${label}: paced, ${size.clients} clients offering ${rate} req/s in all, p99`,
          unit: 'ms',
          values: out.pacedP99[k] ?? [],
          target: '< 15 ms',
          pass: spread(out.pacedP99[k] ?? []).median < 15,
        },
      ]),
      {
        name: `${label}: speed-up, restic / api p50 (closed loop)`,
        unit: 'x',
        values: out.ratioP50,
        target: '>= 50x',
        pass: spread(out.ratioP50).median >= 50,
      },
      {
        name: `${label}: speed-up, restic / api p50 paced at ${size.pacedRates[0]} req/s`,
        unit: 'x',
        values: out.ratioPaced,
        target: '>= 50x',
        pass: spread(out.ratioPaced).median >= 50,
      },
    );
  }
  // The listing beside the do-nothing server, round by round (each round measured both).
  const overEcho = (out: Series, k: number): number[] =>
    (out.pacedP99[k] ?? []).map((p99, round) => p99 / (echoP99[k]?.[round] ?? Number.NaN));
  const echoTarget = (rate: number) => (rate >= 400 ? 3 : 2);
  figures.push(
    ...size.pacedRates.map(
      (rate, k): Figure => ({
        name: `do-nothing server (same answer, same load): paced ${rate} req/s, p99`,
        unit: 'ms',
        values: echoP99[k] ?? [],
      }),
    ),
    ...apis.flatMap(({ label }, i) =>
      size.pacedRates.map((rate, k): Figure => {
        const values = overEcho(series[i] as Series, k);
        return {
          name: `${label}: paced ${rate} req/s, p99 ratio api / do-nothing server`,
          unit: 'x',
          values,
          target: `<= ${echoTarget(rate)}x in every round`,
          pass: values.length > 0 && spread(values).max <= echoTarget(rate),
        };
      }),
    ),
  );
  // BENCH_API_BASELINE: this build's api CPU per request over the baseline build's, round by
  // round (both measured in the same round, one after the other): the A/B of the two builds.
  const baselineIndex = apis.findIndex((a) => a.label === BASELINE_LABEL);
  if (baselineIndex > 0) {
    const ours = (series[0] as Series).apiCpu;
    const theirs = (series[baselineIndex] as Series).apiCpu;
    const values = ours.map((cpu, round) => cpu / (theirs[round] ?? Number.NaN));
    figures.push({
      name: `api CPU time per request (closed loop), ${apis[0]?.label} of this build / ${BASELINE_LABEL} (${baseline}), same round`,
      unit: 'x',
      values,
      target: '<= 0.5x (median of the rounds)',
      pass: values.length > 0 && spread(values).median <= 0.5,
    });
  }
  figures.push(
    { name: '`restic snapshots --tag` latency (median per round)', unit: 'ms', values: resticMs },
    { name: 'api p50 latency with 1 client (no queueing)', unit: 'ms', values: singleP50 },
    {
      name: 'speed-up: restic / api p50 with 1 client',
      unit: 'x',
      values: ratioSingle,
      target: '>= 50x',
      pass: spread(ratioSingle).median >= 50,
    },
  );
  const one = series[0] as Series;
  const cpu = spread(one.apiCpu).median;
  const db = spread(one.dbCpu).median;
  const gen = spread(one.benchCpu).median;
  const cores = availableParallelism();
  const ceiling = (cores * 1000) / (cpu + db + gen);
  return {
    id: 1,
    title: "Listing a customer's snapshots",
    setup: `${ids.length.toLocaleString('en')} customers x (${MANUAL_ROWS} manual + ${DAILY_ROWS} daily) = ${(ids.length * 35).toLocaleString('en')} catalog rows (bulk INSERT); ${size.clients} concurrent HTTP clients (undici, keep-alive) on the api (child process, loopback; ${apis.map((a) => a.label).join(' and ')}, the same database), ${size.tokens} customer API tokens used round-robin. Each round: ${Math.min(2, size.loadSeconds)} s of 1 client alone; the restic calls; then for each api configuration (alternating which goes first) ${size.loadSeconds} s of closed-loop load (each client sends its next request when the previous answered: the api's saturation; CPU time of the api's processes, of MariaDB and of the load generator read around it) and ${size.loadSeconds} s at each paced rate (open loop: the ${size.clients} clients together offer ${size.pacedRates.join(' / ')} req/s on a fixed schedule; latency from the scheduled send); then the same paced loads on a do-nothing Node HTTP server answering the same ${answer.length} bytes. Beside it \`restic snapshots --json --tag customer-<id>,manual\` on a local repository of ${size.resticSnapshots} tiny snapshots (${size.resticCustomers} customers), ${size.resticCallsPerRound} calls per round, warm restic cache; ${size.rounds} rounds. ${errors} of ${requests} HTTP requests failed.`,
    figures,
    limits: `Closed loop: one request costs the api ${cpu.toFixed(2)} ms of CPU, MariaDB ${db.toFixed(2)} ms and the load generator ${gen.toFixed(2)} ms (medians, ${apis[0]?.label}), so ${cores} cores serve at most ~${Math.round(ceiling)} requests/s, and by Little's law each of ${size.clients} back-to-back clients waits ${size.clients} / throughput: a closed-loop p99 under 15 ms needs more than ${Math.round((size.clients / 15) * 1000).toLocaleString('en')} req/s, beyond this machine whatever the api does. The paced loads are the latency figures. Paced, a request wakes 3 processes (load generator, api, MariaDB once: the catalog; the API token's viewer comes from the api's cache, auth/bearer-cache.ts) on cores that are often idle; the do-nothing server under the same load shows what the machine and the load generator alone cost (its p99 above). The api's p99 beyond that is pauses: its young-generation GCs (every request leaves garbage), and time off the core while MariaDB, the load generator or another process runs; more api processes (BACKUPS_API_PROCESSES) spread them over the cores. restic is bounded by its start-up (process start, key derivation to open the repository, reading every snapshot file) and grows with the repository (the plan's shared manual repository holds 50,000 snapshots at 10,000 customers, not 500); the catalog query does not.`,
  };
}

/** CPU time (user + system, ms) of these processes together so far; 0 for one that is gone. */
async function cpuMs(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of proc(5), in clock ticks (100 per second here)
    total += (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
  }
  return total;
}

/** A child process that answers every HTTP request with `answer` (after reading its body). */
async function startEchoServer(
  world: BenchWorld,
  answer: Buffer,
): Promise<{ origin: string; stop: () => void }> {
  const file = path.join(world.dataDir, 'echo-answer.json');
  await writeFile(file, answer);
  const code = `
    const http = require('node:http');
    const body = require('node:fs').readFileSync(process.argv[1]);
    const server = http.createServer((req, res) => {
      req.on('data', () => {});
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', code, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  world.onCleanup(async () => stop());
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', () => reject(new Error('the do-nothing server exited')));
    child.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return { origin: `http://127.0.0.1:${port}`, stop };
}
