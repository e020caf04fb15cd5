import { hasAdminRights, mayActFor, viewerCustomerId } from '../auth/viewer.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { ErrorInterface } from '../graphql/error.schema.js';
import {
  forbidden,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
} from '../graphql/errors.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { parseId } from '../graphql/ids.js';
import { findJobSnapshot } from '../snapshots/catalog-read.js';
import { BackupScopeEnum, SnapshotRef, SnapshotSourceEnum } from '../snapshots/snapshot.schema.js';
import { asBackupScope, asSnapshotSource } from '../snapshots/snapshot-scope.js';
import {
  ACTIVE_STATUSES,
  asJobKind,
  asJobStatus,
  BackupJob,
  type IBackupJob,
  SITE_KINDS,
} from './job.entity.js';
import {
  ConfirmationMismatchError,
  JobInProgressError,
  NotCancellableError,
} from './job-errors.js';
import { cancelJob, findVisibleJob, requestBackup, requestRestore } from './job-requests.js';
import { type JobEvent, watchCustomerJobs, watchJob } from './job-watch.js';

/** bigint columns may arrive as strings from the driver. */
export function byteCount(value: string | number | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export const JobKindEnum = builder.enumType('JobKind', {
  values: {
    BACKUP: { value: 'backup' },
    RESTORE: { value: 'restore' },
    VERIFY: { value: 'verify' },
    DOWNLOAD: { value: 'download' },
    INDEX: { value: 'index' },
  } as const,
});

export const JobStatusEnum = builder.enumType('JobStatus', {
  values: {
    PENDING: { value: 'pending' },
    RUNNING: { value: 'running' },
    COMPLETED: { value: 'completed' },
    FAILED: { value: 'failed' },
    CANCELLED: { value: 'cancelled' },
  } as const,
});

export const BackupJobRef = builder.objectRef<IBackupJob>('BackupJob');

BackupJobRef.implement({
  description: 'A backup or a restore, from request to end',
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.field({ type: JobKindEnum, resolve: (j) => asJobKind(j.kind) }),
    scope: t.field({ type: BackupScopeEnum, resolve: (j) => asBackupScope(j.scope) }),
    source: t.field({
      type: SnapshotSourceEnum,
      resolve: (j) => asSnapshotSource(j.source),
      description:
        'backup: where the snapshot goes; restore: where the restored snapshot comes from',
    }),
    status: t.field({ type: JobStatusEnum, resolve: (j) => asJobStatus(j.status) }),
    phase: t.exposeString('phase', {
      nullable: true,
      description:
        'current step, e.g. DUMPING_DATABASE, UPLOADING, SWAPPING; on a COMPLETED restore, FINISHED_AFTER_INTERRUPTION when the worker was stopped after the switch-over and its recovery finished it',
    }),
    progress: t.float({
      description: '0..1 over the whole job',
      resolve: (j) => Number(j.progress ?? 0),
    }),
    bytesDone: t.field({ type: 'Bytes', nullable: true, resolve: (j) => byteCount(j.bytesDone) }),
    bytesTotal: t.field({ type: 'Bytes', nullable: true, resolve: (j) => byteCount(j.bytesTotal) }),
    etaSeconds: t.exposeInt('etaSeconds', { nullable: true }),
    snapshot: t.field({
      type: SnapshotRef,
      nullable: true,
      description: 'backup: the snapshot made; restore: the one restored',
      resolve: (job, _args, ctx) => findJobSnapshot(ctx.em, job.customer.id, job.snapshotId),
    }),
    safetySnapshot: t.field({
      type: SnapshotRef,
      nullable: true,
      description:
        'restore: the undo point, the site as the restore replaced it (may come a few seconds after COMPLETED)',
      resolve: (job, _args, ctx) => findJobSnapshot(ctx.em, job.customer.id, job.safetySnapshotId),
    }),
    label: t.exposeString('label', { nullable: true }),
    paths: t.stringList({
      nullable: true,
      description: 'a partial restore: the paths it puts back (relative to the site folder)',
      resolve: (j) => j.paths ?? null,
    }),
    tables: t.stringList({
      nullable: true,
      description: 'a partial restore: the tables it puts back',
      resolve: (j) => j.tables ?? null,
    }),
    errorCode: t.exposeString('errorCode', { nullable: true }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    errorDetail: t.string({
      nullable: true,
      description:
        "admin tokens only (null for anyone else): the failing script's last log lines, for the hosting company's support",
      resolve: (j, _args, ctx) => (hasAdminRights(ctx.viewer) ? (j.errorDetail ?? null) : null),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (j) => j.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (j) => j.startedAt ?? null }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (j) => j.finishedAt ?? null }),
  }),
});

builder.objectType(JobInProgressError, {
  name: 'JobInProgressError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    job: t.field({
      type: BackupJobRef,
      resolve: (error) => {
        if (!error.job) throw new Error('JobInProgressError without its job');
        return error.job;
      },
    }),
  }),
});

builder.objectType(ConfirmationMismatchError, {
  name: 'ConfirmationMismatchError',
  interfaces: [ErrorInterface],
});

builder.objectType(NotCancellableError, {
  name: 'NotCancellableError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ job: t.field({ type: BackupJobRef, resolve: (error) => error.job }) }),
});

const JOBS_MAX = 50;

builder.objectFields(CustomerRef, (t) => ({
  jobs: t.field({
    type: [BackupJobRef],
    description: 'newest first',
    args: { limit: t.arg.int({ defaultValue: 10 }) },
    resolve: (customer, args, ctx) =>
      ctx.em.find(
        BackupJob,
        { customer: customer.id },
        {
          orderBy: { createdAt: 'desc', id: 'desc' },
          limit: Math.min(JOBS_MAX, Math.max(1, args.limit ?? 10)),
        },
      ),
  }),
  activeJob: t.field({
    type: BackupJobRef,
    nullable: true,
    description:
      "the customer's backup or restore waiting or running (the one that blocks another); drills, indexing and downloads run beside the site and are in jobs",
    resolve: (customer, _args, ctx) =>
      ctx.em.findOne(BackupJob, {
        customer: customer.id,
        kind: { $in: [...SITE_KINDS] },
        status: { $in: [...ACTIVE_STATUSES] },
      }),
  }),
}));

builder.queryField('job', (t) =>
  t.field({
    type: BackupJobRef,
    nullable: true,
    description: 'null unless the viewer may see it',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => findVisibleJob(ctx, args.id),
  }),
);

export const JobPayload = (name: string) =>
  builder.objectRef<{ job: IBackupJob }>(name).implement({
    fields: (t) => ({ job: t.field({ type: BackupJobRef, resolve: (p) => p.job }) }),
  });
const CreateBackupSuccess = JobPayload('CreateBackupSuccess');
const RestoreSnapshotSuccess = JobPayload('RestoreSnapshotSuccess');
const CancelJobSuccess = JobPayload('CancelJobSuccess');

builder.mutationType({});

builder.mutationField('createBackup', (t) =>
  t.field({
    type: CreateBackupSuccess,
    args: {
      scope: t.arg({ type: BackupScopeEnum, required: true }),
      label: t.arg.string(),
      customerId: t.arg.id({ description: 'admin tokens: the customer to act for' }),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [JobInProgressError, InvalidInputError, RateLimitedError],
      directResult: true,
      union: { name: 'CreateBackupResult' },
    },
    resolve: async (_root, args, ctx) => ({
      job: await requestBackup(ctx, {
        scope: args.scope,
        label: args.label,
        customerId: args.customerId,
      }),
    }),
  }),
);

builder.mutationField('restoreSnapshot', (t) =>
  t.field({
    type: RestoreSnapshotSuccess,
    description: 'confirmation must be RESTORE',
    args: {
      snapshotId: t.arg.id({ required: true }),
      scope: t.arg({ type: BackupScopeEnum, required: true }),
      confirmation: t.arg.string({ required: true }),
      customerId: t.arg.id({ description: 'admin tokens: the customer to act for' }),
      paths: t.arg.stringList({
        description:
          'restore only these files and folders (relative to the site folder, from the index: indexSnapshot first); scope FILES or BOTH',
      }),
      tables: t.arg.stringList({
        description: "restore only these tables of the backup's database; scope DATABASE or BOTH",
      }),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [
        JobInProgressError,
        InvalidInputError,
        NotFoundError,
        ConfirmationMismatchError,
        RateLimitedError,
      ],
      directResult: true,
      union: { name: 'RestoreSnapshotResult' },
    },
    resolve: async (_root, args, ctx) => ({
      job: await requestRestore(ctx, {
        snapshotId: args.snapshotId,
        scope: args.scope,
        confirmation: args.confirmation,
        customerId: args.customerId,
        paths: args.paths,
        tables: args.tables,
      }),
    }),
  }),
);

builder.mutationField('cancelJob', (t) =>
  t.field({
    type: CancelJobSuccess,
    description: 'a PENDING job only',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { signedIn: true },
    errors: {
      types: [NotFoundError, NotCancellableError],
      directResult: true,
      union: { name: 'CancelJobResult' },
    },
    resolve: async (_root, args, ctx) => ({ job: await cancelJob(ctx, args.id) }),
  }),
);

function eventJob(event: JobEvent): IBackupJob {
  if ('denied' in event) throw event.denied;
  return event.job;
}

builder.subscriptionType({});

// Over WebSocket, an event is executed once for all subscribers with the same operation,
// variables and rights (api/shared-subscription.ts): BackupJob's fields must depend on the job
// (and its customer's catalog) only, never on which session or token asks.

builder.subscriptionField('jobUpdated', (t) =>
  t.field({
    type: BackupJobRef,
    description: "the job's state now, then every change; ends after a terminal state",
    args: { id: t.arg.id({ required: true }) },
    authScopes: { signedIn: true },
    subscribe: (_root, args, ctx) => watchJob(ctx, args.id),
    resolve: eventJob,
  }),
);

builder.subscriptionField('customerJobs', (t) =>
  t.field({
    type: BackupJobRef,
    description: 'every change of any job of that customer (default: me)',
    args: { customerId: t.arg.id() },
    authScopes: { signedIn: true },
    subscribe: (_root, args, ctx) => {
      const viewer = ctx.viewer;
      const customerId =
        args.customerId === null || args.customerId === undefined
          ? viewerCustomerId(viewer)
          : parseId(args.customerId);
      if (!viewer || customerId === null) {
        throw new GraphQLError('Name the customer.', { extensions: { code: 'BAD_USER_INPUT' } });
      }
      if (!mayActFor(viewer, customerId)) throw forbidden();
      return watchCustomerJobs(ctx, viewer, customerId);
    },
    resolve: eventJob,
  }),
);
