import { credentialWatchOf } from '../auth/credential-watch.js';
import { mayActFor, type Viewer } from '../auth/viewer.js';
import type { ApiServices, GraphQLContext } from '../graphql/context.js';
import { forbidden, unauthenticated } from '../graphql/errors.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { now, SingleFlight } from '../infra/single-flight.js';
import { BackupJob, type IBackupJob } from './job.entity.js';
import { customerJobsTopic, type JobChanged, jobTopic } from './job-events.js';
import { findVisibleJob } from './job-requests.js';

/** What a job subscription yields: the job's state, or why the viewer may no longer see it. */
export type JobEvent = { job: IBackupJob } | { denied: GraphQLError };

export const TERMINAL_STATUSES = new Set(['completed', 'failed', 'cancelled']);

/**
 * A job's stream ends with its final state: a terminal status, and for a completed restore its
 * undo point on the row (stored after the switch-over, a few seconds after COMPLETED) or its
 * script ended without one (settled: the repository did not take it; the recovery sweep
 * attaches it later). A subscriber's last event is then the restore with its undo point.
 */
export function streamEnds(
  job: Pick<IBackupJob, 'status' | 'kind' | 'safetySnapshotId' | 'settledAt'>,
): boolean {
  if (!TERMINAL_STATUSES.has(String(job.status))) return false;
  if (job.kind !== 'restore' || job.status !== 'completed') return true;
  return job.safetySnapshotId !== null || job.settledAt !== null;
}

function notFound(): GraphQLError {
  return new GraphQLError('There is no such job.', { extensions: { code: 'NOT_FOUND' } });
}

const rows = new SingleFlight<IBackupJob | null>();

/** The job's row now (a fresh identity map: the worker changed it), or null if it is gone. */
function reread(services: ApiServices, id: number, since: number): Promise<IBackupJob | null> {
  return rows.run(String(id), since, () => services.orm.em.fork().findOne(BackupJob, { id }));
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
 * An async iterator fed from outside. `offer(key, value)` hands it a value; a value not yet
 * taken is replaced by a newer one of the same key, in its place (a subscriber that has not
 * taken a job's last state gets the newer one instead, so a slow one holds at most one value
 * per job). `end` completes it after the values in hand, `fail` makes it throw. Taking a value
 * is synchronous work: no promise chain per value beyond the one `next` returns.
 */
class KeyedStream<T> implements AsyncIterableIterator<T> {
  private readonly queue = new Map<number, T>();
  private waiting:
    | { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void }
    | undefined;
  private failure: { error: unknown } | undefined;
  private ended = false;

  constructor(private readonly onClose: () => void) {}

  offer(key: number, value: T): void {
    if (this.ended) return;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting.resolve({ value, done: false });
    } else {
      this.queue.set(key, value);
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
    this.queue.clear();
    this.onClose();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting.reject(error);
    else this.failure = { error };
  }

  next(): Promise<IteratorResult<T>> {
    for (const [key, value] of this.queue) {
      this.queue.delete(key);
      return Promise.resolve({ value, done: false });
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
    this.queue.clear();
    this.failure = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Key of the event that ends a stream (after it, nothing is offered). */
const DENIED = -1;

interface Watcher {
  viewer: Viewer;
  stream: KeyedStream<JobEvent>;
}

const sessionEnded = (): JobEvent => ({
  denied: unauthenticated('Your session has ended. Sign in again.'),
});

/**
 * One per channel (a job's or a customer's) and api process: it listens on the channel once
 * and runs rounds for its watchers, one at a time. A change, or a new watcher, asks for a
 * round; what arrives while a round runs is handled by the next one, which reads the newest
 * state. Rounds read jobs only: whether a watcher's session or token is still live is the
 * credential watch's to say (auth/credential-watch.ts, by revocation messages, expiry timers
 * and a periodic check), which ends the watcher's stream when it ends, between events too.
 */
abstract class Feed<W extends Watcher> {
  protected readonly watchers = new Set<W>();
  /** watcher -> the release of its credential's hold */
  private readonly releases = new Map<W, () => void>();
  private readonly changes: AsyncIterator<JobChanged>;
  private wanted = false;
  private running = false;
  private closed = false;

  constructor(
    protected readonly services: ApiServices,
    topic: string,
    private readonly onClosed: () => void,
  ) {
    this.changes = services.pubSub.subscribe(topic)[Symbol.asyncIterator]();
    void this.listen(); // its first next() subscribes, before any watcher's first read
  }

  /** Notes a change for the next round. */
  protected abstract noted(change: JobChanged): void;
  protected abstract round(targets: W[]): Promise<void>;

  /** Adds a watcher, whose stream ends (after the error) when its credential ends. */
  protected add(watcher: W): void {
    this.watchers.add(watcher);
    const release = credentialWatchOf(this.services).hold(watcher.viewer, () =>
      this.deny(watcher, sessionEnded()),
    );
    this.releases.set(watcher, release);
    this.request();
  }

  protected leave(watcher: W): void {
    this.releases.get(watcher)?.();
    this.releases.delete(watcher);
    this.watchers.delete(watcher);
    if (this.watchers.size === 0) this.closeFeed();
  }

  /** Denies a watcher its events: the error, then the end of its stream. */
  protected deny(watcher: W, denied: JobEvent): void {
    watcher.stream.offer(DENIED, denied);
    watcher.stream.end();
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
        this.noted(change.value);
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
}

interface JobWatcher extends Watcher {
  /** The last state this watcher was given (repeated states are skipped). */
  lastState: string;
}

/**
 * A job's feed: each round reads the row once, and hands each watcher that may see it the
 * same event object (so its execution is shared too, api/shared-subscription.ts). A new
 * watcher gets the state read after it joined, then every change.
 */
class JobFeed extends Feed<JobWatcher> {
  constructor(
    services: ApiServices,
    private readonly jobId: number,
    onClosed: () => void,
  ) {
    super(services, jobTopic(services.config.BACKUPS_REDIS_PREFIX, jobId), onClosed);
  }

  join(viewer: Viewer): KeyedStream<JobEvent> {
    const watcher: JobWatcher = {
      viewer,
      lastState: '',
      stream: new KeyedStream<JobEvent>(() => this.leave(watcher)),
    };
    this.add(watcher);
    return watcher.stream;
  }

  /** When the oldest change not yet handed out was published (delivery metrics). */
  private publishedAt: number | undefined;

  protected noted(change: JobChanged): void {
    this.publishedAt ??= change.at;
  }

  protected async round(targets: JobWatcher[]): Promise<void> {
    const publishedAt = this.publishedAt;
    this.publishedAt = undefined;
    const job = await reread(this.services, this.jobId, now());
    if (!job) {
      for (const watcher of targets) watcher.stream.end();
      return;
    }
    const state = stateKey(job);
    const terminal = streamEnds(job);
    const visible: JobEvent = { job };
    let hidden: JobEvent | undefined;
    for (const watcher of targets) {
      if (!this.watchers.has(watcher)) continue; // left (or its credential ended) during the read
      if (!mayActFor(watcher.viewer, job.customer.id)) {
        hidden ??= { denied: notFound() };
        this.deny(watcher, hidden);
        continue;
      }
      if (state !== watcher.lastState) {
        watcher.lastState = state;
        watcher.stream.offer(this.jobId, visible);
      }
      if (terminal) watcher.stream.end();
    }
    this.services.metrics?.delivered('job', publishedAt);
  }
}

interface CustomerWatcher extends Watcher {
  /** The feed's change count when it joined: it is given the changes noted after that. */
  joinedAt: number;
  /** Whether it was given its starting state (the job in progress). */
  started: boolean;
}

/**
 * A customer's feed: each round reads the customer's job in progress once for the watchers
 * that just joined (their starting state), and each job changed since the last round once for
 * everyone; every watcher that may see them gets the same event objects.
 */
class CustomerFeed extends Feed<CustomerWatcher> {
  private count = 0;
  /** job id -> the change count of its newest notice, in the order first noticed */
  private pending = new Map<number, number>();

  constructor(
    services: ApiServices,
    private readonly customerId: number,
    onClosed: () => void,
  ) {
    super(services, customerJobsTopic(services.config.BACKUPS_REDIS_PREFIX, customerId), onClosed);
  }

  join(viewer: Viewer): KeyedStream<JobEvent> {
    const watcher: CustomerWatcher = {
      viewer,
      joinedAt: this.count,
      started: false,
      stream: new KeyedStream<JobEvent>(() => this.leave(watcher)),
    };
    this.add(watcher);
    return watcher.stream;
  }

  /** When the oldest change not yet handed out was published (delivery metrics). */
  private publishedAt: number | undefined;

  protected noted(change: JobChanged): void {
    this.pending.set(change.id, ++this.count);
    this.publishedAt ??= change.at;
  }

  protected async round(targets: CustomerWatcher[]): Promise<void> {
    const changed = [...this.pending];
    this.pending = new Map();
    const publishedAt = this.publishedAt;
    this.publishedAt = undefined;
    const starting = targets.filter((w) => !w.started);
    const since = now();
    const [active, jobs] = await Promise.all([
      starting.length === 0
        ? null
        : this.services.orm.em
            .fork()
            .findOne(
              BackupJob,
              { customer: this.customerId, status: { $in: ['pending', 'running'] } },
              { orderBy: { id: 'desc' } },
            ),
      Promise.all(changed.map(([id]) => reread(this.services, id, since))),
    ]);
    let refused: JobEvent | undefined;
    const allowed = targets.filter((watcher) => {
      if (!this.watchers.has(watcher)) return false; // left (or its credential ended) meanwhile
      if (mayActFor(watcher.viewer, this.customerId)) return true;
      refused ??= { denied: forbidden() }; // as at the subscribe
      this.deny(watcher, refused);
      return false;
    });
    if (active) {
      const event: JobEvent = { job: active };
      for (const watcher of allowed) if (!watcher.started) watcher.stream.offer(active.id, event);
    }
    for (const watcher of allowed) watcher.started = true;
    changed.forEach(([id, noticedAt], i) => {
      const job = jobs[i];
      // A job of another customer announced on this channel is not shown.
      if (!job || job.customer.id !== this.customerId) return;
      const event: JobEvent = { job };
      for (const watcher of allowed) {
        if (noticedAt > watcher.joinedAt) watcher.stream.offer(id, event);
      }
    });
    if (changed.length > 0) this.services.metrics?.delivered('customer', publishedAt);
  }
}

/** The feeds of one api (services), by channel. */
const feeds = new WeakMap<ApiServices, Map<string, JobFeed | CustomerFeed>>();

function feedFor<F extends JobFeed | CustomerFeed>(
  services: ApiServices,
  channel: string,
  create: (onClosed: () => void) => F,
): F {
  let byChannel = feeds.get(services);
  if (!byChannel) {
    byChannel = new Map();
    feeds.set(services, byChannel);
  }
  const open = byChannel;
  const existing = open.get(channel) as F | undefined;
  if (existing) return existing;
  const feed: F = create(() => {
    if (open.get(channel) === feed) open.delete(channel);
  });
  open.set(channel, feed);
  return feed;
}

/**
 * One job's state now, then each change, ending after a terminal state; repeated states are
 * skipped. The job's feed listens before it reads the state, so no change falls between the
 * two.
 */
export async function watchJob(ctx: GraphQLContext, id: string): Promise<AsyncIterable<JobEvent>> {
  const viewer = ctx.viewer;
  const first = await findVisibleJob(ctx, id);
  if (!viewer || !first) throw notFound();
  const { services } = ctx;
  return feedFor(
    services,
    `job:${first.id}`,
    (onClosed) => new JobFeed(services, first.id, onClosed),
  ).join(viewer);
}

/**
 * Every change of any of the customer's jobs, authorised event by event, starting with the job
 * in progress (a client that reconnects mid-job sees it at once).
 */
export function watchCustomerJobs(
  ctx: GraphQLContext,
  viewer: Viewer,
  customerId: number,
): AsyncIterable<JobEvent> {
  const { services } = ctx;
  return feedFor(
    services,
    `customer:${customerId}`,
    (onClosed) => new CustomerFeed(services, customerId, onClosed),
  ).join(viewer);
}
