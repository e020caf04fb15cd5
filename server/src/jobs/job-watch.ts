import { Repeater } from 'graphql-yoga';
import { mayActFor, type Viewer, viewerStillValid } from '../auth/viewer.js';
import type { GraphQLContext } from '../graphql/context.js';
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
 * One job's state now, then each change, ending after a terminal state. It listens before it
 * reads the current state, so no change falls between the two; repeated states are skipped.
 */
export async function watchJob(ctx: GraphQLContext, id: string): Promise<AsyncIterable<JobEvent>> {
  const viewer = ctx.viewer;
  const first = await findVisibleJob(ctx, id);
  if (!viewer || !first) throw notFound();
  const topic = jobTopic(ctx.services.config.BACKUPS_REDIS_PREFIX, first.id);

  return new Repeater<JobEvent>(async (push, stop) => {
    const changes = ctx.services.pubSub.subscribe(topic)[Symbol.asyncIterator]();
    let stopped = false;
    const stopping = stop.then(() => {
      stopped = true;
      return { done: true as const, value: undefined };
    });
    let next = changes.next(); // subscribes now
    try {
      let lastKey = '';
      let since = now();
      let job: IBackupJob | null = await reread(ctx, first.id, since);
      while (job && !stopped) {
        const event = await authorise(ctx, viewer, job, since);
        if ('denied' in event) {
          await push(event);
          break;
        }
        const key = stateKey(job);
        if (key !== lastKey) {
          lastKey = key;
          await push(event);
        }
        if (TERMINAL_STATUSES.has(String(job.status))) break;
        const change = await Promise.race([next, stopping]);
        if (change.done) break;
        next = changes.next();
        since = received(change.value);
        job = await reread(ctx, first.id, since);
      }
    } finally {
      await changes.return?.();
      stop();
    }
  });
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
