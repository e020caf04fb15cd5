import type { EntityManager } from '@mikro-orm/mariadb';
import { nullableUtcDatetime, utcDatetime } from '../db/raw.js';

/**
 * What an operator asks of a hosting node, read from the database: the worker's metrics, the
 * CLI's `status` and the admin view read the same figures. Reads only (jobs are written by
 * jobs/job-store.ts). Kinds and statuses come from the rows, so a new kind shows up by itself.
 */

/** A customer whose newest daily backup is older than this is "stale" (alerts, dashboard). */
export const DAILY_STALE_HOURS = 36;

export interface NodeFigures {
  node: string;
  customers: number;
  /** Customers older than DAILY_STALE_HOURS whose newest daily snapshot is older, or missing. */
  staleCustomers: number;
  jobs: { kind: string; status: string; n: number }[];
  /** The oldest PENDING job's creation, by lane: scheduled work (daily) and what people asked (jobs). */
  oldestPendingAt: Record<Lane, Date | null>;
  dailyLastSuccessAt: Date | null;
}

type Stamp = string | Date | null;
type Lane = 'jobs' | 'daily';

/** The lane of a row, as the tasks choose it: scheduled or daily work goes to the daily lane. */
const LANE_SQL = `case when j.source = 'daily' or j.requested_by_kind = 'schedule' then 'daily' else 'jobs' end`;

export async function nodeFigures(
  em: EntityManager,
  node: string,
  now: Date = new Date(),
): Promise<NodeFigures> {
  const connection = em.getConnection();
  const staleBefore = new Date(now.getTime() - DAILY_STALE_HOURS * 3600_000);
  const [jobs, [daily], [coverage]] = await Promise.all([
    connection.execute<{ kind: string; status: string; lane: Lane; n: number; oldest: Stamp }[]>(
      `select j.kind, j.status, ${LANE_SQL} as lane, count(*) as n, min(j.created_at) as oldest
         from backup_jobs j join customers c on c.id = j.customer_id
        where c.host = ? group by j.kind, j.status, lane`,
      [node],
    ),
    connection.execute<{ at: Stamp }[]>(
      `select max(j.finished_at) as at from backup_jobs j join customers c on c.id = j.customer_id
        where c.host = ? and j.kind = 'backup' and j.source = 'daily' and j.status = 'completed'`,
      [node],
    ),
    connection.execute<{ total: number; stale: number | null }[]>(
      `select count(*) as total,
              sum(c.created_at <= ? and (d.latest is null or d.latest < ?)) as stale
         from customers c
         left join (select customer_id, max(time) as latest from snapshots
                     where source = 'daily' group by customer_id) d on d.customer_id = c.id
        where c.host = ?`,
      [staleBefore, staleBefore, node],
    ),
  ]);
  const oldest: Record<Lane, Date | null> = { jobs: null, daily: null };
  const counts = new Map<string, { kind: string; status: string; n: number }>();
  for (const row of jobs) {
    const key = `${row.kind}/${row.status}`;
    const count = counts.get(key) ?? { kind: row.kind, status: row.status, n: 0 };
    count.n += Number(row.n);
    counts.set(key, count);
    if (row.status !== 'pending') continue;
    const at = nullableUtcDatetime(row.oldest);
    const lane = row.lane === 'daily' ? 'daily' : 'jobs';
    if (at && (!oldest[lane] || at < (oldest[lane] as Date))) oldest[lane] = at;
  }
  return {
    node,
    customers: Number(coverage?.total ?? 0),
    staleCustomers: Number(coverage?.stale ?? 0),
    jobs: [...counts.values()],
    oldestPendingAt: oldest,
    dailyLastSuccessAt: nullableUtcDatetime(daily?.at ?? null),
  };
}

/** The nodes customers live on (every node has at least one customer or is not a node). */
export async function knownNodes(em: EntityManager): Promise<string[]> {
  const rows = await em
    .getConnection()
    .execute<{ host: string }[]>('select distinct host from customers order by host');
  return rows.map((r) => r.host);
}

export interface DailyRunReport {
  /** The run's window: daily jobs created since then count. */
  since: Date;
  done: number[];
  failed: { customerId: number; code: string | null }[];
  /** Queued or running now. */
  running: number[];
  /** No daily job since `since`. */
  missing: number[];
}

/**
 * The night's daily run of a node: for every customer of the node, the newest daily backup job
 * created since `since` (the last scheduled start), by outcome; customers with none are missing.
 */
export async function dailyRunOf(
  em: EntityManager,
  node: string,
  since: Date,
): Promise<DailyRunReport> {
  const rows = await em
    .getConnection()
    .execute<{ customer_id: number; status: string | null; error_code: string | null }[]>(
      `select c.id as customer_id, j.status, j.error_code
       from customers c
       left join backup_jobs j on j.id = (
             select max(x.id) from backup_jobs x
              where x.customer_id = c.id and x.kind = 'backup' and x.source = 'daily'
                and x.created_at >= ?)
      where c.host = ? order by c.id`,
      [since, node],
    );
  const report: DailyRunReport = { since, done: [], failed: [], running: [], missing: [] };
  for (const row of rows) {
    const id = Number(row.customer_id);
    if (row.status === null) report.missing.push(id);
    else if (row.status === 'completed') report.done.push(id);
    else if (row.status === 'pending' || row.status === 'running') report.running.push(id);
    else report.failed.push({ customerId: id, code: row.error_code });
  }
  return report;
}

/** The scheduled start (HH:MM, local time) most recently passed: the night's run began then. */
export function lastDailyStart(at: string, now: Date = new Date()): Date {
  const [h, m] = at.split(':').map(Number);
  const start = new Date(now);
  start.setHours(h ?? 2, m ?? 0, 0, 0);
  if (start > now) start.setDate(start.getDate() - 1);
  return start;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
}

export interface RunningJob {
  id: number;
  customerId: number;
  kind: string;
  phase: string | null;
  progress: number;
  startedAt: Date | null;
}

/** A job kind's last run on the node (a restore drill is a VERIFY job). */
export interface LastRun {
  jobId: number;
  status: string;
  finishedAt: Date | null;
  errorCode: string | null;
}

/** One node, as `status` shows it. */
export interface NodeStatus {
  node: string;
  /** The worker holds the node's lease (renewed every few seconds while it runs). */
  workerAlive: boolean;
  queues: Record<'jobs' | 'daily', QueueCounts>;
  running: RunningJob[];
  pending: number;
  oldestPendingAt: NodeFigures['oldestPendingAt'];
  customers: number;
  staleCustomers: number;
  daily: DailyRunReport;
  /** The newest VERIFY job of the node; null: none yet. */
  lastDrill: LastRun | null;
  /** The last repository check this node's worker ran (the audit log); null: none yet. */
  lastRepositoryCheck: LastCheck | null;
}

/** A repository check as the audit log keeps it (worker/repository-check.ts). */
export interface LastCheck {
  repository: string;
  outcome: string;
  subset: string | null;
  at: Date;
}

export interface StatusDeps {
  em: EntityManager;
  /** Whether a worker holds the node's lease. */
  workerAlive(node: string): Promise<boolean>;
  queueCounts(node: string, lane: 'jobs' | 'daily'): Promise<QueueCounts>;
  dailyAt: string;
  now?: Date;
}

export async function nodeStatus(deps: StatusDeps, node: string): Promise<NodeStatus> {
  const now = deps.now ?? new Date();
  const connection = deps.em.getConnection();
  const [figures, alive, jobs, daily, running, [drill], [check]] = await Promise.all([
    nodeFigures(deps.em, node, now),
    deps.workerAlive(node),
    deps.queueCounts(node, 'jobs'),
    deps.queueCounts(node, 'daily'),
    connection.execute<
      {
        id: number;
        customer_id: number;
        kind: string;
        phase: string | null;
        progress: number;
        started_at: Stamp;
      }[]
    >(
      `select j.id, j.customer_id, j.kind, j.phase, j.progress, j.started_at
         from backup_jobs j join customers c on c.id = j.customer_id
        where c.host = ? and j.status = 'running' order by j.id`,
      [node],
    ),
    connection.execute<
      { id: number; status: string; finished_at: Stamp; error_code: string | null }[]
    >(
      `select j.id, j.status, j.finished_at, j.error_code
         from backup_jobs j join customers c on c.id = j.customer_id
        where c.host = ? and j.kind = 'verify' order by j.id desc limit 1`,
      [node],
    ),
    connection.execute<{ target_id: string | null; details: unknown; at: Stamp }[]>(
      `select target_id, details, at from audit_events
        where action = 'repository_checked' and actor_kind = 'operator' and actor_id = ?
        order by id desc limit 1`,
      [`worker:${node}`],
    ),
  ]);
  const checkDetails = (
    typeof check?.details === 'string' ? JSON.parse(check.details) : (check?.details ?? {})
  ) as { outcome?: unknown; subset?: unknown };
  return {
    node,
    workerAlive: alive,
    queues: { jobs, daily: daily },
    running: running.map((r) => ({
      id: Number(r.id),
      customerId: Number(r.customer_id),
      kind: r.kind,
      phase: r.phase,
      progress: Number(r.progress),
      startedAt: nullableUtcDatetime(r.started_at),
    })),
    pending: figures.jobs.filter((j) => j.status === 'pending').reduce((n, j) => n + j.n, 0),
    oldestPendingAt: figures.oldestPendingAt,
    customers: figures.customers,
    staleCustomers: figures.staleCustomers,
    daily: await dailyRunOf(deps.em, node, lastDailyStart(deps.dailyAt, now)),
    lastDrill: drill
      ? {
          jobId: Number(drill.id),
          status: drill.status,
          finishedAt: nullableUtcDatetime(drill.finished_at),
          errorCode: drill.error_code,
        }
      : null,
    lastRepositoryCheck: check
      ? {
          repository: check.target_id ?? '',
          outcome: typeof checkDetails.outcome === 'string' ? checkDetails.outcome : 'unknown',
          subset: typeof checkDetails.subset === 'string' ? checkDetails.subset : null,
          at: utcDatetime(check.at as string | Date),
        }
      : null,
  };
}
