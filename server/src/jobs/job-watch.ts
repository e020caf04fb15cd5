import { Repeater } from 'graphql-yoga';
import { mayActFor, type Viewer, viewerStillValid } from '../auth/viewer.js';
import type { ApiServices, GraphQLContext } from '../graphql/context.js';
import { unauthenticated } from '../graphql/errors.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { now, SingleFlight } from '../infra/single-flight.js';
import { BackupJob, type IBackupJob } from './job.entity.js';
import { customerJobsTopic, type JobChanged, jobTopic } from './job-events.js';
import { findVisibleJob } from './job-requests.js';

/** What a job subscription yields: the job's state, or why the viewer may no longer see it. */
export type JobEvent = { job: IBackupJob } | { denied: GraphQLError };

export const TERMINAL_STATUSES = new Set(['completed', 'failed', 'cancelled']);

function notFound(): GraphQLError {
  return new GraphQLError('There is no such job.', { extensions: { code: 'NOT_FOUND' } });
}

const rows = new SingleFlight<IBackupJob | null>();
const viewers = new SingleFlight<boolean>();
const receivedAt = new WeakMap<object, number>();

/**
 * When this process received a change. The Redis event target hands the same parsed payload
 * to every subscriber of a channel, so they all get the same moment and can share a read.
 */
function received(change: object): number {
  let at = receivedAt.get(change);
  if (at === undefined) {
    at = now();
    receivedAt.set(change, at);
  }
  return at;
}

/**
 * The job's row now (a fresh identity map: the worker changed it), or null if it is gone.
 * Subscribers woken by the same event share one read.
 */
function reread(ctx: GraphQLContext, id: number, since: number): Promise<IBackupJob | null> {
  return rows.run(String(id), since, () => ctx.services.orm.em.fork().findOne(BackupJob, { id }));
}

function viewerKey(viewer: Viewer): string {
  return viewer.kind === 'customer' ? `s:${viewer.sessionId}` : `t:${viewer.tokenId}`;
}

/** Authorises one event: the viewer's session or token is still live and may see the job. */
async function authorise(
  ctx: GraphQLContext,
  viewer: Viewer,
  job: IBackupJob,
  since: number,
): Promise<JobEvent> {
  const live = await viewers.run(viewerKey(viewer), since, () =>
    viewerStillValid(ctx.services.orm.em, viewer),
  );
  if (!live) {
    return { denied: unauthenticated('Your session has ended. Sign in again.') };
  }
  if (!mayActFor(viewer, job.customer.id)) return { denied: notFound() };
  return { job };
}

function stateKey(job: IBackupJob): string {
  return JSON.stringify([
    job.status,
    job.phase,
    job.progress,
    job.bytesDone,
    job.bytesTotal,
    job.etaSeconds,
    job.snapshotId,
    job.safetySnapshotId,
    job.errorCode,
    job.startedAt,
    job.finishedAt,
  ]);
}

/**
 * Which of these viewers' sessions and tokens are still live: one query per kind, however many
 * viewers (the subscribers of one job share it for each event).
 */
async function liveViewerKeys(ctx: ApiServices, viewers: Iterable<Viewer>): Promise<Set<string>> {
  const sessions = new Set<string>();
  const tokens = new Set<number>();
  for (const viewer of viewers) {
    if (viewer.kind === 'customer') sessions.add(viewer.sessionId);
    else tokens.add(viewer.tokenId);
  }
  // Once per event on a hot path: plain SQL, no query builder or hydration.
  const connection = ctx.orm.em.getConnection();
  const marks = (count: number) => Array.from({ length: count }, () => '?').join(', ');
  const [liveSessions, liveTokens] = await Promise.all([
    sessions.size === 0
      ? []
      : connection.execute<{ id: string }[]>(
          `select id from sessions where id in (${marks(sessions.size)}) and expires_at > ?`,
          [...sessions, new Date()],
        ),
    tokens.size === 0
      ? []
      : connection.execute<{ id: number }[]>(
          `select id from api_tokens where id in (${marks(tokens.size)}) and revoked_at is null`,
          [...tokens],
        ),
  ]);
  const live = new Set<string>();
  for (const row of liveSessions) live.add(`s:${row.id}`);
  for (const row of liveTokens) live.add(`t:${Number(row.id)}`);
  return live;
}

/**
 * An async iterator fed from outside: `offer` hands it a value, the newest not yet taken wins
 * (a subscriber that has not taken the last state gets the newer one instead), `end` completes
 * it after the value in hand, `fail` makes it throw. Taking a value is synchronous work, no
 * promise chain per value beyond the one `next` returns.
 */
class LatestStream<T> implements AsyncIterableIterator<T> {
  private slot: { value: T } | undefined;
  private waiting:
    | { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void }
    | undefined;
  private failure: { error: unknown } | undefined;
  private ended = false;

  constructor(private readonly onClose: () => void) {}

  offer(value: T): void {
    if (this.ended) return;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting.resolve({ value, done: false });
    } else {
      this.slot = { value };
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onClose();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve({ value: undefined, done: true });
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.slot = undefined;
    this.onClose();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting.reject(error);
    else this.failure = { error };
  }

  next(): Promise<IteratorResult<T>> {
    const slot = this.slot;
    if (slot) {
      this.slot = undefined;
      return Promise.resolve({ value: slot.value, done: false });
    }
    const failure = this.failure;
    if (failure) {
      this.failure = undefined;
      return Promise.reject(failure.error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.slot = undefined;
    this.failure = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

interface JobWatcher {
  viewer: Viewer;
  key: string;
  /** The last state this watcher was given (repeated states are skipped). */
  lastState: string;
  stream: LatestStream<JobEvent>;
}

/**
 * One per watched job and api process: it listens on the job's channel once, and for each
 * change reads the row once and checks every watcher's session or token with one query per
 * kind, then hands each watcher its event synchronously (the same object to all that may see
 * it). Changes that arrive while a round is running are coalesced into one more round, which
 * reads the newest state. A new watcher asks for a round too: it gets the state read after it
 * joined, and every later change.
 */
class JobFeed {
  private readonly watchers = new Set<JobWatcher>();
  private readonly changes: AsyncIterator<JobChanged>;
  private wanted = false;
  private running = false;
  private closed = false;

  constructor(
    private readonly services: ApiServices,
    private readonly jobId: number,
    private readonly onClosed: () => void,
  ) {
    const topic = jobTopic(services.config.BACKUPS_REDIS_PREFIX, jobId);
    this.changes = services.pubSub.subscribe(topic)[Symbol.asyncIterator]();
    void this.listen(); // its first next() subscribes, before any watcher's first read
  }

  join(viewer: Viewer): LatestStream<JobEvent> {
    const watcher: JobWatcher = {
      viewer,
      key: viewerKey(viewer),
      lastState: '',
      stream: new LatestStream<JobEvent>(() => this.leave(watcher)),
    };
    this.watchers.add(watcher);
    this.request();
    return watcher.stream;
  }

  private leave(watcher: JobWatcher): void {
    this.watchers.delete(watcher);
    if (this.watchers.size === 0) this.closeFeed();
  }

  private closeFeed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    void this.changes.return?.()?.catch(() => undefined);
  }

  private async listen(): Promise<void> {
    try {
      for (;;) {
        const change = await this.changes.next();
        if (change.done || this.closed) return;
        this.request();
      }
    } catch (error) {
      // The channel is gone: this feed ends, its watchers see the error, the next one starts anew.
      this.closeFeed();
      for (const watcher of [...this.watchers]) watcher.stream.fail(error);
    }
  }

  private request(): void {
    this.wanted = true;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.wanted && this.watchers.size > 0) {
        this.wanted = false;
        const targets = [...this.watchers];
        try {
          await this.round(targets);
        } catch (error) {
          for (const watcher of targets) watcher.stream.fail(error);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async round(targets: JobWatcher[]): Promise<void> {
    const since = now();
    const [job, live] = await Promise.all([
      rows.run(String(this.jobId), since, () =>
        this.services.orm.em.fork().findOne(BackupJob, { id: this.jobId }),
      ),
      liveViewerKeys(
        this.services,
        targets.map((w) => w.viewer),
      ),
    ]);
    if (!job) {
      for (const watcher of targets) watcher.stream.end();
      return;
    }
    const state = stateKey(job);
    const terminal = TERMINAL_STATUSES.has(String(job.status));
    const visible: JobEvent = { job };
    let ended: JobEvent | undefined;
    let hidden: JobEvent | undefined;
    for (const watcher of targets) {
      if (!this.watchers.has(watcher)) continue; // left during the read
      const { stream } = watcher;
      if (!live.has(watcher.key)) {
        ended ??= { denied: unauthenticated('Your session has ended. Sign in again.') };
        stream.offer(ended);
        stream.end();
        continue;
      }
      if (!mayActFor(watcher.viewer, job.customer.id)) {
        hidden ??= { denied: notFound() };
        stream.offer(hidden);
        stream.end();
        continue;
      }
      if (state !== watcher.lastState) {
        watcher.lastState = state;
        stream.offer(visible);
      }
      if (terminal) stream.end();
    }
  }
}

const feeds = new WeakMap<ApiServices, Map<number, JobFeed>>();

/**
 * One job's state now, then each change, ending after a terminal state; repeated states are
 * skipped. The job's feed listens before it reads the state, so no change falls between the
 * two.
 */
export async function watchJob(ctx: GraphQLContext, id: string): Promise<AsyncIterable<JobEvent>> {
  const viewer = ctx.viewer;
  const first = await findVisibleJob(ctx, id);
  if (!viewer || !first) throw notFound();
  const services = ctx.services;
  let byJob = feeds.get(services);
  if (!byJob) {
    byJob = new Map();
    feeds.set(services, byJob);
  }
  const jobs = byJob;
  let feed = jobs.get(first.id);
  if (!feed) {
    const created: JobFeed = new JobFeed(services, first.id, () => {
      if (jobs.get(first.id) === created) jobs.delete(first.id);
    });
    feed = created;
    jobs.set(first.id, feed);
  }
  return feed.join(viewer);
}

/** Every change of any of the customer's jobs, authorised event by event. */
export function watchCustomerJobs(
  ctx: GraphQLContext,
  viewer: Viewer,
  customerId: number,
): AsyncIterable<JobEvent> {
  const topic = customerJobsTopic(ctx.services.config.BACKUPS_REDIS_PREFIX, customerId);
  return new Repeater<JobEvent>(async (push, stop) => {
    const changes = ctx.services.pubSub.subscribe(topic)[Symbol.asyncIterator]();
    const stopping = stop.then(() => ({ done: true as const, value: undefined }));
    let next = changes.next(); // subscribes now, before the current state is read
    try {
      // Start with the state now: a client that (re)connects mid-job sees it at once.
      const active = await ctx.services.orm.em
        .fork()
        .findOne(
          BackupJob,
          { customer: customerId, status: { $in: ['pending', 'running'] } },
          { orderBy: { id: 'desc' } },
        );
      if (active) {
        const event = await authorise(ctx, viewer, active, now());
        await push(event);
        if ('denied' in event) return;
      }
      for (;;) {
        const change: IteratorResult<JobChanged> = await Promise.race([next, stopping]);
        if (change.done) break;
        next = changes.next();
        const since = received(change.value);
        const job = await reread(ctx, change.value.id, since);
        if (!job || job.customer.id !== customerId) continue;
        const event = await authorise(ctx, viewer, job, since);
        await push(event);
        if ('denied' in event) break;
      }
    } finally {
      await changes.return?.();
      stop();
    }
  });
}
