import { builder } from '../graphql/builder.js';
import { InvalidInputError, NotFoundError, RateLimitedError } from '../graphql/errors.js';
import { JobPayload } from '../jobs/job.schema.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import { requestVerify } from '../jobs/job-requests.js';
import { snapshotOwner } from './catalog-read.js';
import { SnapshotRef } from './snapshot.schema.js';
import { loadVerification, type VerificationView } from './verifications.js';

export const VerificationStatusEnum = builder.enumType('VerificationStatus', {
  values: {
    PENDING: { value: 'pending' },
    RUNNING: { value: 'running' },
    VERIFIED: { value: 'verified' },
    FAILED: { value: 'failed' },
  } as const,
});

const VerificationRef = builder.objectRef<VerificationView>('Verification').implement({
  description:
    'A restore drill of the backup: restored for real beside the site (never onto it) and checked file by file and table by table',
  fields: (t) => ({
    status: t.field({
      type: VerificationStatusEnum,
      description:
        'PENDING/RUNNING: a drill is waiting or running (the figures are the last one’s)',
      resolve: (v) => v.status,
    }),
    verifiedAt: t.field({ type: 'DateTime', nullable: true, resolve: (v) => v.verifiedAt }),
    restoreSeconds: t.float({
      nullable: true,
      description: 'the measured time of the restore itself: the download and the database import',
      resolve: (v) => v.restoreSeconds,
    }),
    files: t.int({ nullable: true, resolve: (v) => v.files }),
    bytes: t.field({ type: 'Bytes', nullable: true, resolve: (v) => v.bytes }),
    tables: t.int({ nullable: true, resolve: (v) => v.tables }),
    problem: t.string({
      nullable: true,
      description: 'FAILED: what is wrong with the backup, in plain words',
      resolve: (v) => v.problem,
    }),
  }),
});

builder.objectField(SnapshotRef, 'verification', (t) =>
  t.field({
    type: VerificationRef,
    nullable: true,
    description: 'the last restore drill of this backup; null if it was never drilled',
    resolve: (snapshot, _args, ctx) => {
      const owner = snapshotOwner(snapshot);
      return owner === null ? null : loadVerification(ctx.em, owner, snapshot.snapshotId);
    },
  }),
);

const VerifySnapshotSuccess = JobPayload('VerifySnapshotSuccess');

builder.mutationField('verifySnapshot', (t) =>
  t.field({
    type: VerifySnapshotSuccess,
    description:
      'a restore drill of one of the customer’s backups, into a sandbox: the live site is never touched',
    args: {
      snapshotId: t.arg.id({ required: true }),
      customerId: t.arg.id({ description: 'admin tokens: the customer to act for' }),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [JobInProgressError, InvalidInputError, NotFoundError, RateLimitedError],
      directResult: true,
      union: { name: 'VerifySnapshotResult' },
    },
    resolve: async (_root, args, ctx) => ({
      job: await requestVerify(ctx, { snapshotId: args.snapshotId, customerId: args.customerId }),
    }),
  }),
);
