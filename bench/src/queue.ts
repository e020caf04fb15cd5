// Measurement 5: the queue and the api under load. Many customers request a database backup
// within a second through the api (admin token + customerId); every request must be accepted
// or refused correctly (JOB_IN_PROGRESS, RATE_LIMITED), every accepted job must end, and the
// worker (concurrency 2) drains the queue. Beside it: the same backups by hand, 2 at a time.
import type { ICustomer } from '../../server/src/customers/customer.entity.js';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import { mapLimit, now, quantile } from './stats.js';

export interface QueueSize {
  customers: number;
  /** How many of them get a second request in the same burst (JOB_IN_PROGRESS expected). */
  duplicates: number;
  /** Requests for one more customer: 10 pass the rate limit (1 accepted, 9 JOB_IN_PROGRESS). */
  hammer: number;
  /** Backups by hand per repetition (the baseline is extrapolated when fewer than all). */
  handSample: number;
  reps: number;
}

export const QUEUE_FULL: QueueSize = {
  customers: 200,
  duplicates: 20,
  hammer: 13,
  handSample: 20,
  reps: 1,
};
export const QUEUE_QUICK: QueueSize = {
  customers: 8,
  duplicates: 2,
  hammer: 13,
  handSample: 3,
  reps: 1,
};

const MUTATION = `mutation($c: ID!) { createBackup(scope: DATABASE, customerId: $c) {
  __typename ... on CreateBackupSuccess { job { id } } ... on Error { code } } }`;

async function makeCustomers(world: BenchWorld, count: number): Promise<ICustomer[]> {
  const customers = await mapLimit(Array.from({ length: count }), 8, () => world.customer());
  for (let i = 0; i < customers.length; i += 50) {
    const chunk = customers.slice(i, i + 50);
    for (const c of chunk) world.trackCustomerDatabase(c.id);
    await world.sql(
      chunk
        .map(
          (c) => `create database customer_${c.id} character set utf8mb4;
            create table customer_${c.id}.wp_options (option_name varchar(191) primary key, option_value text);
            insert into customer_${c.id}.wp_options values ('siteurl', 'https://c${c.id}.example');`,
        )
        .join('\n'),
    );
  }
  return customers;
}

export async function measureQueue(
  world: BenchWorld,
  size: QueueSize,
  log: (line: string) => void,
): Promise<Measurement> {
  const customers = await makeCustomers(world, size.customers);
  const hammered = await makeCustomers(world, size.reps);
  const burstMs: number[] = [];
  const requestP99: number[] = [];
  const drainS: number[] = [];
  const handS: number[] = [];
  const ratio: number[] = [];
  const jobsPerMinute: number[] = [];
  const notes: string[] = [];
  let allCorrect = true;

  const queueRun = async (rep: number) => {
    const target = hammered[rep] as ICustomer;
    const requests = [
      ...customers.map((c) => c.id),
      ...customers.slice(-size.duplicates).map((c) => c.id),
      ...Array.from({ length: size.hammer }, () => target.id),
    ];
    const latencies: number[] = [];
    const counts: Record<string, number> = {};
    const accepted: number[] = [];
    const t0 = now();
    await Promise.all(
      requests.map(async (customerId) => {
        const s = now();
        let kind: string;
        try {
          const r = await world.gql(MUTATION, { c: String(customerId) }, world.adminToken);
          const payload = r.data?.createBackup as
            | { __typename: string; job?: { id: string }; code?: string }
            | undefined;
          kind = payload?.job
            ? 'accepted'
            : (payload?.code ?? `error: ${r.errors?.[0]?.message ?? r.status}`);
          if (payload?.job) accepted.push(Number(payload.job.id));
        } catch (error) {
          kind = `error: ${error instanceof Error ? error.message : String(error)}`;
        }
        latencies.push(now() - s);
        counts[kind] = (counts[kind] ?? 0) + 1;
      }),
    );
    const burst = now() - t0;
    const jobs = await world.waitForJobs(accepted, 30 * 60_000);
    const drain = now() - t0;
    const byStatus: Record<string, number> = {};
    for (const job of jobs) byStatus[String(job.status)] = (byStatus[String(job.status)] ?? 0) + 1;
    const ended = (byStatus.completed ?? 0) + (byStatus.failed ?? 0) + (byStatus.cancelled ?? 0);
    const lost = accepted.length - ended;
    const expected = {
      accepted: size.customers + 1,
      JOB_IN_PROGRESS: size.duplicates + Math.min(10, size.hammer) - 1,
      RATE_LIMITED: Math.max(0, size.hammer - 10),
    };
    const correct =
      counts.accepted === expected.accepted &&
      (counts.JOB_IN_PROGRESS ?? 0) === expected.JOB_IN_PROGRESS &&
      (counts.RATE_LIMITED ?? 0) === expected.RATE_LIMITED &&
      Object.keys(counts).every((k) =>
        ['accepted', 'JOB_IN_PROGRESS', 'RATE_LIMITED'].includes(k),
      ) &&
      lost === 0 &&
      (byStatus.completed ?? 0) === accepted.length;
    allCorrect &&= correct;
    notes.push(
      `Repetition ${rep + 1}: ${requests.length} requests in ${(burst / 1000).toFixed(2)} s → ${Object.entries(
        counts,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )} (expected accepted ${expected.accepted}, JOB_IN_PROGRESS ${expected.JOB_IN_PROGRESS}, RATE_LIMITED ${expected.RATE_LIMITED}); jobs ${Object.entries(
        byStatus,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )}, lost ${lost}; all done after ${(drain / 1000).toFixed(1)} s — ${correct ? 'correct' : '**not as expected**'}.`,
    );
    return { burst, p99: quantile(latencies, 0.99), drain, jobs: accepted.length };
  };

  const handRun = async () => {
    const sample = customers.slice(0, size.handSample);
    const t0 = now();
    await mapLimit(sample, 2, async (c) => {
      const r = await world.script('customer-backup', [String(c.id), 'db']);
      if (r.exitCode !== 0)
        throw new Error(`customer-backup ${c.id} failed: ${r.stderr.slice(-500)}`);
    });
    // Extrapolated to the same number of backups as the queue ran (customers + 1).
    return ((now() - t0) * (size.customers + 1)) / sample.length;
  };

  // By hand before and after each queue run: every queue run has a baseline on each side.
  let before = await handRun();
  for (let rep = 0; rep < size.reps; rep++) {
    const q = await queueRun(rep);
    const after = await handRun();
    handS.push(before / 1000);
    const h = (before + after) / 2;
    before = after;
    burstMs.push(q.burst);
    requestP99.push(q.p99);
    drainS.push(q.drain / 1000);
    ratio.push(q.drain / h);
    jobsPerMinute.push((q.jobs / q.drain) * 60_000);
    if (rep === size.reps - 1) handS.push(after / 1000);
    log(
      `queue rep ${rep + 1}: burst ${(q.burst / 1000).toFixed(2)} s, all done ${(q.drain / 1000).toFixed(1)} s; by hand ${(h / 1000).toFixed(1)} s (${size.handSample < size.customers + 1 ? 'extrapolated' : 'measured'})`,
    );
  }
  const figures: Figure[] = [
    {
      name: `burst: all ${size.customers + size.duplicates + size.hammer} requests answered`,
      unit: 'ms',
      values: burstMs,
    },
    { name: 'burst: request latency p99', unit: 'ms', values: requestP99 },
    {
      name: `queue: all ${size.customers + 1} jobs done (from the first request)`,
      unit: 's',
      values: drainS,
    },
    { name: 'queue throughput', unit: 'jobs/min', values: jobsPerMinute },
    {
      name: `by hand: the same backups, 2 at a time${size.handSample < size.customers + 1 ? ` (${size.handSample} run, extrapolated)` : ''}`,
      unit: 's',
      values: handS,
    },
    { name: 'queue / by hand (mean of the runs before and after)', unit: 'x', values: ratio },
    {
      name: 'accepted/refused as expected, none lost, all completed (1 = yes)',
      unit: 'bool',
      values: [allCorrect ? 1 : 0],
      target: 'all',
      pass: allCorrect,
    },
  ];
  return {
    id: 5,
    title: 'Queue and api under load',
    setup: `${size.customers} customers (each with a small database), host = the worker's node. Per repetition, one burst sent at once through 64 keep-alive connections with the admin token: one createBackup(DATABASE, customerId) per customer, a second one for ${size.duplicates} of them (JOB_IN_PROGRESS expected), and ${size.hammer} for one more customer (the rate limit is 10 per customer per minute: 1 accepted, 9 JOB_IN_PROGRESS, ${Math.max(0, size.hammer - 10)} RATE_LIMITED). The worker runs 2 jobs at a time; "done" is every accepted job's row in a terminal state. Beside it: \`scripts/customer-backup <id> db\` by hand for ${size.handSample} of the customers, 2 at a time${size.handSample < size.customers + 1 ? `, scaled to ${size.customers + 1} backups` : ''}. ${size.reps} queue run(s), with a hand run before and after each.`,
    figures,
    notes,
    limits:
      "Draining is bound by the per-job cost of the script (mysqldump, one `restic backup` and one `restic forget` start, each opening the repository with its key derivation, and the repository lock that retention takes exclusively while the other job's backup holds it shared) at concurrency 2 on 2 shared cores; the queue adds little to that. The burst is bound by the api on one Node thread: each request makes a rate-limit call to Redis, an INSERT refused or accepted by the UNIQUE index, and an enqueue.",
  };
}
