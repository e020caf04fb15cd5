// Measurement 2: progress delivery. The bench updates a job row and publishes the change as the
// worker does (nativeUpdate, then publishJobChanged); graphql-ws clients subscribed to
// `jobUpdated` on the api (child process) receive it. 1 subscriber on one job and 1,000 on
// another, and the same 1,000 clients on a bare ws server (progress-floor.mjs: the floor),
// phases interleaved; the api's resident memory is read from /proc/<pid>/status.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { execa } from 'execa';
import { credentialRecheck } from '../../server/src/auth/credential-watch.js';
import { BackupJob } from '../../server/src/jobs/job.entity.js';
import { publishJobChanged } from '../../server/src/jobs/job-events.js';
import type { BenchWorld } from './env.js';
import type { Figure, Measurement } from './report.js';
import { now, quantile, sleep, spread } from './stats.js';

export interface ProgressSize {
  subscribers: number;
  eventsPerPhase: number;
  intervalMs: number;
  rounds: number;
}

export const PROGRESS_FULL: ProgressSize = {
  subscribers: 1000,
  eventsPerPhase: 15,
  intervalMs: 250,
  rounds: 3,
};
export const PROGRESS_QUICK: ProgressSize = {
  subscribers: 100,
  eventsPerPhase: 4,
  intervalMs: 250,
  rounds: 2,
};

const SUBSCRIPTION = 'subscription($id: ID!) { jobUpdated(id: $id) { id status bytesDone } }';

/** What a subscriber thread (progress-clients.mjs) is given. */
interface ClientsInput {
  wsUrl: string;
  origin: string;
  token: string;
  jobId: number;
  count: number;
  query: string;
  /** lean: the protocol spoken over ws directly; graphql-ws: graphql-ws's client */
  client: 'lean' | 'graphql-ws';
}

/** What it reports; receipts are [stamp, receivedAt, stamp, receivedAt, ...] in micros. */
type ClientsMessage =
  | { type: 'subscribed' }
  | { type: 'receipts'; pairs: number[] }
  | { type: 'failed'; message: string }
  | { type: 'closed' };

/** BENCH_PROGRESS_CLIENT=graphql-ws uses graphql-ws's client in the subscriber threads. */
const CLIENT: ClientsInput['client'] =
  process.env.BENCH_PROGRESS_CLIENT === 'graphql-ws' ? 'graphql-ws' : 'lean';

/**
 * Subscriber threads of the crowd (BENCH_PROGRESS_THREADS, default one per core: more only
 * add switching on cores the api needs too).
 */
const CROWD_THREADS = Math.max(
  1,
  Number(process.env.BENCH_PROGRESS_THREADS ?? availableParallelism()) || 1,
);

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

/** Monotonic microseconds (process.hrtime): the same clock in the subscriber threads. */
const micros = () => Number(process.hrtime.bigint() / 1000n);

interface Target {
  jobId: number;
  customerId: number;
  /** stamp (bytesDone) -> when it was published, in micros */
  published: Map<number, number>;
  /** per subscriber: latencies of the events it received (ms) */
  received: number[];
  deliveries: number;
  /** stamp -> how many subscribers received it */
  countOf: Map<number, number>;
  /** stamp -> [first, last] receipt, in micros */
  window: Map<number, [number, number]>;
}

/**
 * `count` graphql-ws subscribers of the target's job in a worker thread; resolves once each
 * received its first result (the job's state now). Receipts reach the target as they come.
 */
async function subscriberThread(
  world: BenchWorld,
  wsUrl: string,
  token: string,
  target: Target,
  count: number,
): Promise<{ close(): Promise<void> }> {
  const input: ClientsInput = {
    wsUrl,
    origin: world.api.origin,
    token,
    jobId: target.jobId,
    count,
    query: SUBSCRIPTION,
    client: CLIENT,
  };
  const worker = new Worker(new URL('./progress-clients.mjs', import.meta.url), {
    workerData: input,
  });
  let closed: () => void = () => undefined;
  const whenClosed = new Promise<void>((resolve) => {
    closed = resolve;
    worker.once('exit', () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (message: ClientsMessage) => {
      if (message.type === 'subscribed') resolve();
      else if (message.type === 'failed') reject(new Error(message.message));
      else if (message.type === 'closed') closed();
      else if (message.type === 'receipts') {
        const { pairs } = message;
        for (let i = 0; i + 1 < pairs.length; i += 2) {
          const stamp = pairs[i] as number;
          const sent = target.published.get(stamp);
          if (sent === undefined) continue;
          target.received.push(((pairs[i + 1] as number) - sent) / 1000);
          target.deliveries++;
          target.countOf.set(stamp, (target.countOf.get(stamp) ?? 0) + 1);
          const at = pairs[i + 1] as number;
          const window = target.window.get(stamp);
          if (!window) target.window.set(stamp, [at, at]);
          else if (at > window[1]) window[1] = at;
          else if (at < window[0]) window[0] = at;
        }
      }
    });
  });
  return {
    async close() {
      worker.postMessage({ type: 'close' });
      const timer = setTimeout(() => void worker.terminate(), 10_000);
      await whenClosed;
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}

/**
 * The bare ws server of progress-floor.mjs in a child process, fed from `channel` on Redis.
 */
async function startFloorServer(
  world: BenchWorld,
  channel: string,
): Promise<{ wsUrl: string; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [new URL('./progress-floor.mjs', import.meta.url).pathname, world.redisUrl, channel],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  world.onCleanup(async () => stop());
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', () => reject(new Error('the bare ws server exited')));
    child.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return { wsUrl: `ws://127.0.0.1:${port}/graphql`, stop };
}

export async function measureProgress(
  world: BenchWorld,
  size: ProgressSize,
  log: (line: string) => void,
): Promise<Measurement> {
  const makeTarget = async (): Promise<Target> => {
    const customer = await world.customer({ host: 'progress' });
    // A running job's row as the worker leaves it; nothing queues or runs it.
    const fork = world.orm.em.fork();
    const job = fork.create(BackupJob, {
      customer: customer.id,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
      status: 'running',
      startedAt: new Date(),
      phase: 'UPLOADING',
      progress: 0,
      requestedByKind: 'operator',
    });
    await fork.flush();
    return {
      jobId: job.id,
      customerId: customer.id,
      published: new Map(),
      received: [],
      deliveries: 0,
      countOf: new Map(),
      window: new Map(),
    };
  };
  const single = await makeTarget();
  const crowd = await makeTarget();
  // The floor's crowd: the same job id (the same frame size), its own stamps.
  const floor: Target = {
    ...crowd,
    published: new Map(),
    received: [],
    countOf: new Map(),
    window: new Map(),
  };
  const floorChannel = `${world.prefix}:bench-floor`;
  const floorServer = await startFloorServer(world, floorChannel);
  const singleToken = await world.customerToken(single.customerId);
  const mariadbPid = Number(
    (await execa('pgrep', ['-o', '-x', 'mariadbd'], { reject: false })).stdout.trim() || 0,
  );
  const crowdToken = await world.customerToken(crowd.customerId);

  const rssSamples: { at: number; rss: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rss } = await world.rssKb();
      rssSamples.push({ at: now(), rss });
      await sleep(100);
    }
  })();

  const threads: { close(): Promise<void> }[] = [];
  try {
    const rssBefore = (await world.rssKb()).rss;
    const t = now();
    threads.push(await subscriberThread(world, world.api.wsUrl, singleToken, single, 1));
    const shares = Array.from({ length: CROWD_THREADS }, (_, i) =>
      Math.floor((size.subscribers + i) / CROWD_THREADS),
    );
    const started = await Promise.allSettled([
      ...shares.map((count) => subscriberThread(world, world.api.wsUrl, crowdToken, crowd, count)),
      ...shares.map((count) =>
        subscriberThread(world, floorServer.wsUrl, crowdToken, floor, count),
      ),
    ]);
    for (const outcome of started) if (outcome.status === 'fulfilled') threads.push(outcome.value);
    for (const outcome of started) if (outcome.status === 'rejected') throw outcome.reason;
    log(
      `progress: ${size.subscribers + 1} subscriptions on the api and ${size.subscribers} on the bare ws server open in ${((now() - t) / 1000).toFixed(1)} s`,
    );
    await sleep(1000);
    const rssSubscribed = (await world.rssKb()).rss;

    const conn = world.orm;
    let seq = 0;
    /** As the worker does: update the row, then announce it; the api reads the row. */
    const publishToApi = async (target: Target, stamp: number) => {
      await conn.em
        .fork()
        .nativeUpdate(
          BackupJob,
          { id: target.jobId },
          { bytesDone: stamp, progress: (++seq % 1000) / 1000 },
        );
      target.published.set(stamp, micros());
      await publishJobChanged(world.redis, world.prefix, {
        id: target.jobId,
        customerId: target.customerId,
      });
    };
    /** The bare ws server takes the state from the message itself. */
    const publishToFloor = async (target: Target, stamp: number) => {
      target.published.set(stamp, micros());
      await world.redis.publish(
        floorChannel,
        JSON.stringify({ jobId: target.jobId, bytesDone: stamp }),
      );
    };
    const phase = async (
      target: Target,
      subscribers: number,
      publish: (target: Target, stamp: number) => Promise<void> = publishToApi,
    ) => {
      target.received = [];
      target.deliveries = 0;
      const apiPids = await world.api.pids();
      const apiCpuBefore = await cpuMs(apiPids);
      const dbCpuBefore = await cpuMs([mariadbPid]);
      const phaseStart = now();
      let last = 0;
      const stamps: number[] = [];
      for (let e = 0; e < size.eventsPerPhase; e++) {
        const stamp = micros();
        last = stamp;
        stamps.push(stamp);
        await publish(target, stamp);
        await sleep(size.intervalMs);
      }
      const expected = size.eventsPerPhase * subscribers;
      // Every subscriber ends with the last state; an earlier one may be skipped when the
      // api re-reads the row after a newer update (coalesced: the newest state is shown).
      const until = now() + 30_000;
      while ((target.countOf.get(last) ?? 0) < subscribers && now() < until) await sleep(20);
      // The api may still be working off re-reads of skipped states: wait until a query that
      // needs the database answers quickly again, so the next phase starts on an idle api.
      if (publish === publishToApi) {
        const settleStart = now();
        for (;;) {
          const t0 = now();
          await world.gql('{ me { id } }', {}, singleToken);
          if (now() - t0 < 50 || now() - settleStart > 30_000) break;
          await sleep(50);
        }
        settle.push((now() - settleStart) / 1000);
      }
      // From the first publish until the api answers quickly again (re-reads worked off): the
      // api's and MariaDB's CPU time per published event (idle sockets cost next to nothing).
      const apiCpu = ((await cpuMs(apiPids)) - apiCpuBefore) / size.eventsPerPhase;
      const dbCpu = ((await cpuMs([mariadbPid])) - dbCpuBefore) / size.eventsPerPhase;
      const peak = Math.max(0, ...rssSamples.filter((s) => s.at >= phaseStart).map((s) => s.rss));
      return {
        p50: quantile(target.received, 0.5),
        p99: quantile(target.received, 0.99),
        lost: expected - target.deliveries,
        missingLast: subscribers - (target.countOf.get(last) ?? 0),
        peak,
        apiCpu,
        dbCpu,
        // first to last receipt of one event among the subscribers (the fan-out's length)
        fanOut: quantile(
          stamps.map((stamp) => {
            const window = target.window.get(stamp);
            return window ? (window[1] - window[0]) / 1000 : 0;
          }),
          0.5,
        ),
      };
    };

    const singleP50: number[] = [];
    const singleP99: number[] = [];
    const crowdP50: number[] = [];
    const crowdP99: number[] = [];
    const crowdPeak: number[] = [];
    const singleApiCpu: number[] = [];
    const crowdApiCpu: number[] = [];
    const crowdDbCpu: number[] = [];
    const fanOut: number[] = [];
    const ratio: number[] = [];
    const floorP50: number[] = [];
    const floorP99: number[] = [];
    const floorFanOut: number[] = [];
    const overFloor: number[] = [];
    let lostFloor = 0;
    let missingLast = 0;
    const settle: number[] = [];
    let lostSingle = 0;
    let lostCrowd = 0;
    for (let round = 0; round < size.rounds; round++) {
      type Outcome = Awaited<ReturnType<typeof phase>>;
      const outcomes: Outcome[] = [];
      const runs = [
        () => phase(single, 1),
        () => phase(crowd, size.subscribers),
        () => phase(floor, size.subscribers, publishToFloor),
      ];
      // Each round starts with another of the three.
      for (let k = 0; k < runs.length; k++) {
        const i = (k + round) % runs.length;
        outcomes[i] = await (runs[i] as () => Promise<Outcome>)();
      }
      const [a, b, c] = outcomes as [Outcome, Outcome, Outcome];
      floorP50.push(c.p50);
      floorP99.push(c.p99);
      floorFanOut.push(c.fanOut);
      overFloor.push(b.p99 / c.p99);
      lostFloor += c.lost;
      singleP50.push(a.p50);
      singleP99.push(a.p99);
      crowdP50.push(b.p50);
      crowdP99.push(b.p99);
      crowdPeak.push(b.peak / 1024);
      singleApiCpu.push(a.apiCpu);
      crowdApiCpu.push(b.apiCpu);
      crowdDbCpu.push(b.dbCpu);
      fanOut.push(b.fanOut);
      ratio.push(b.p99 / a.p99);
      lostSingle += a.lost;
      lostCrowd += b.lost;
      missingLast += a.missingLast + b.missingLast + c.missingLast;
      log(
        `progress round ${round + 1}: 1 subscriber p50 ${a.p50.toFixed(1)} p99 ${a.p99.toFixed(1)} ms; ${size.subscribers} subscribers p50 ${b.p50.toFixed(1)} p99 ${b.p99.toFixed(1)} ms, fan-out (first → last receipt) median ${b.fanOut.toFixed(1)} ms, coalesced ${b.lost}, api CPU ${b.apiCpu.toFixed(1)} ms + MariaDB ${b.dbCpu.toFixed(1)} ms per event (1 subscriber: api ${a.apiCpu.toFixed(1)} ms), api RSS peak ${(b.peak / 1024).toFixed(0)} MB; bare ws server p50 ${c.p50.toFixed(1)} p99 ${c.p99.toFixed(1)} ms, fan-out ${c.fanOut.toFixed(1)} ms`,
      );
    }
    const hwm = (await world.rssKb()).hwm;
    const figures: Figure[] = [
      { name: '1 subscriber: p50 publish → receipt', unit: 'ms', values: singleP50 },
      { name: '1 subscriber: p99', unit: 'ms', values: singleP99 },
      { name: `${size.subscribers} subscribers: p50`, unit: 'ms', values: crowdP50 },
      {
        name: `${size.subscribers} subscribers: p99`,
        unit: 'ms',
        values: crowdP99,
        target: '< 50 ms',
        pass: spread(crowdP99).median < 50,
      },
      { name: `p99 ratio ${size.subscribers} / 1 subscriber`, unit: 'x', values: ratio },
      {
        name: `bare ws server (the floor), ${size.subscribers} subscribers: p50`,
        unit: 'ms',
        values: floorP50,
      },
      {
        name: `bare ws server, ${size.subscribers} subscribers: p99`,
        unit: 'ms',
        values: floorP99,
      },
      {
        name: `p99 ratio api / bare ws server, ${size.subscribers} subscribers`,
        unit: 'x',
        values: overFloor,
        target: '<= 1.3x in every round',
        pass: overFloor.length > 0 && spread(overFloor).max <= 1.3,
      },
      {
        name: '1 subscriber: api CPU time per published event',
        unit: 'ms',
        values: singleApiCpu,
      },
      {
        name: `${size.subscribers} subscribers: api CPU time per published event`,
        unit: 'ms',
        values: crowdApiCpu,
      },
      {
        name: `${size.subscribers} subscribers: MariaDB CPU time per published event`,
        unit: 'ms',
        values: crowdDbCpu,
      },
      {
        name: `api resident memory, peak during the ${size.subscribers}-subscriber phase`,
        unit: 'MB',
        values: crowdPeak,
        target: '< 300 MB',
        pass: spread(crowdPeak).max < 300,
      },
    ];
    return {
      id: 2,
      title: 'Progress delivery (jobUpdated over graphql-ws)',
      setup: `One job with 1 subscriber and one job with ${size.subscribers} subscribers (each its own WebSocket to 127.0.0.1, customer API token in connection_init), clients of the graphql-ws protocol (${CLIENT === 'lean' ? "spoken directly over ws, each frame stamped on arrival before it is parsed: less bench CPU per frame than graphql-ws's client, on cores the api shares" : "graphql-ws's own client"}) in worker threads of the bench process (the single one in its own, the crowd spread over ${CROWD_THREADS}, so the bench does not decode 1,000 frames in one queue; receipt times from process.hrtime, one clock for all threads); the api in a child process (${world.api.runner === 'built' ? 'node on the JavaScript built by tsc, as in production' : 'TypeScript through tsx'}). Per phase ${size.eventsPerPhase} events, one every ${size.intervalMs} ms (the worker's write throttle): row update (bytesDone = a µs timestamp) then publishJobChanged, exactly as the worker; latency = receipt in the client − publish. Beside it the same ${size.subscribers} clients (their own sockets) on a bare ws server fed by the same Redis (the floor; notes). ${size.rounds} rounds of the three phases, each round starting with another.`,
      figures,
      notes: [
        `api resident memory (VmRSS from /proc/<pid>/status of the api child${world.api.processes > 1 ? ` and its ${world.api.processes} api processes, summed` : ''}): ${(rssBefore / 1024).toFixed(0)} MB before the subscribers connected (after measurement 1 when it ran), ${(rssSubscribed / 1024).toFixed(0)} MB with ${size.subscribers + 1} idle subscriptions, high-water mark (VmHWM) of the whole run ${(hwm / 1024).toFixed(0)} MB.`,
        `Intermediate states not delivered (coalesced: the api re-read the row after a newer update, so the subscriber got the newer state instead): 1 subscriber ${lostSingle}, ${size.subscribers} subscribers ${lostCrowd} of ${size.rounds * size.eventsPerPhase * size.subscribers}. Subscribers that never received the last state of a phase within 30 s: ${missingLast}.`,
        `One event's fan-out to the ${size.subscribers} subscribers (first to last receipt, median over the events of a round): api ${fanOut.map((v) => v.toFixed(1)).join(', ')} ms by round; bare ws server ${floorFanOut.map((v) => v.toFixed(1)).join(', ')} ms.`,
        `The bare ws server (bench/src/progress-floor.mjs, a child process like the api) takes the same Redis message as the api and sends one frame, built once, to every subscribed socket: no database read, no authentication, no GraphQL execution, no per-socket serialisation; the same ${size.subscribers} clients (their own sockets, in their own threads) receive it. It is the least any Node server must spend here on this machine: the api's p99 over it is what the api adds. States it did not deliver: ${lostFloor}.`,
        `After a phase, the api needed ${spread(settle).min.toFixed(1)}–${spread(settle).max.toFixed(1)} s (median ${spread(settle).median.toFixed(1)} s) to answer a database query within 50 ms again (working off re-reads of skipped states).`,
        'The plan polls every 5 s: its mean delay is 2.5 s and its worst 5 s, whatever the number of viewers.',
      ],
      limits: `Per event the api reads the job row once (the job's feed, jobs/job-watch.ts; no session or token is read per event: they end by revocation messages, expiry timers and a check every ${credentialRecheck.everyMs / 1000} s, auth/credential-watch.ts), executes the selection set once for all subscribers with the same operation and rights (api/shared-subscription.ts), then writes one frame per subscriber on one Node thread, the payload serialised once per event and the operation id spliced in (api/socket-subscription.ts; graphql-ws keeps the rest of the protocol): that last part is what grows with the subscriber count (the fan-out note above). In a CPU profile of the api under this load (BENCH_API_NODE_ARGS="--cpu-prof ..."), the api's busy time during the 1,000-subscriber events (2026-11-26) went half to ws's send of each frame (47% in writev alone, the kernel's send over loopback, which also does the receiving side's work) and the rest mostly to the promise chain each subscriber's result passes through (graphql-ws's loop, envelop's result mapping, the feed), ~8% to runMicrotasks and ~4% to GC (2026-12-04: writev 46%, GC 11%, envelop's two wrappers of each subscriber's stream ~8%, since taken out: api/shared-subscription.ts masks errors once per shared execution; 2026-12-07: graphql-ws's per-subscriber next path, 9.5-14.6 ms of JavaScript per event, replaced by the shared frame, 3.3-7.4 ms, writev 65% of the busy time; before the first send 2-5 ms go to the job row's read); the bare ws server measured beside it pays the send alone (its p99 and fan-out above). The ${size.subscribers} clients decode their frames on the same 2 cores. What would go further: more api processes (it is stateless: the sockets would spread over them and over the cores).`,
    };
  } finally {
    await Promise.allSettled(threads.map((thread) => thread.close()));
    sampling = false;
    await sampler;
  }
}
