import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { ErrorInterface } from '../graphql/error.schema.js';
import { InvalidInputError, NotFoundError, RateLimitedError } from '../graphql/errors.js';
import type { IBackupJob } from '../jobs/job.entity.js';
import { BackupJobRef, byteCount } from '../jobs/job.schema.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import { Download, type IDownload } from './download.entity.js';
import { downloadUrl, linkKey, tokenFor } from './download-links.js';
import {
  liveDownloads,
  QuotaExceededError,
  requestDownload,
  revokeDownload,
} from './download-requests.js';

export const ArchiveFormatEnum = builder.enumType('ArchiveFormat', {
  values: { ZIP: { value: 'zip' }, TAR_GZ: { value: 'tar_gz' } } as const,
});

/** A download as the schema shows it: only once its archive is built. */
type ReadyDownload = IDownload & { sizeBytes: number; sha256: string; expiresAt: Date };

const ready = (d: IDownload | null): ReadyDownload | null =>
  d && d.status === 'ready' && d.expiresAt && d.sha256 && d.sizeBytes !== null
    ? (d as ReadyDownload)
    : null;

export const DownloadRef = builder.objectRef<ReadyDownload>('Download');

DownloadRef.implement({
  description: "An archive of a backup behind a link, served by the customer's node",
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.string({
      description: 'the link: 404 once expired or revoked',
      resolve: async (d, _args, ctx) => {
        const key = await linkKey(ctx.services.config);
        return downloadUrl(ctx.services.config, d.node, tokenFor(key, d.tokenNonce));
      },
    }),
    expiresAt: t.field({ type: 'DateTime', resolve: (d) => d.expiresAt }),
    sizeBytes: t.field({ type: 'Bytes', resolve: (d) => byteCount(d.sizeBytes) ?? 0 }),
    sha256: t.exposeString('sha256'),
    format: t.field({ type: ArchiveFormatEnum, resolve: (d) => d.format }),
    fileName: t.string({
      description: 'the name the file is saved as',
      resolve: (d) => d.downloadName ?? `download-${d.id}`,
    }),
    database: t.boolean({ resolve: (d) => d.withDatabase }),
    paths: t.stringList({ nullable: true, resolve: (d) => (d.withFiles ? d.paths : []) ?? null }),
    snapshotId: t.exposeString('snapshotId'),
    createdAt: t.field({ type: 'DateTime', resolve: (d) => d.createdAt }),
    revoked: t.boolean({ resolve: (d) => d.revokedAt !== null && d.revokedAt !== undefined }),
  }),
});

builder.objectFields(BackupJobRef, (t) => ({
  download: t.field({
    type: DownloadRef,
    nullable: true,
    description: 'a DOWNLOAD job, once its archive is ready',
    resolve: async (job, _args, ctx) =>
      job.kind === 'download'
        ? ready(await ctx.em.fork().findOne(Download, { job: job.id }))
        : null,
  }),
}));

builder.objectFields(CustomerRef, (t) => ({
  downloads: t.field({
    type: [DownloadRef],
    description: 'archives that can be fetched now (not expired, not revoked), newest first',
    resolve: async (customer, _args, ctx) =>
      (await liveDownloads(ctx.em, customer.id)).flatMap((d) => ready(d) ?? []),
  }),
}));

builder.objectType(QuotaExceededError, {
  name: 'QuotaExceededError',
  interfaces: [ErrorInterface],
});

const CreateDownloadSuccess = builder
  .objectRef<{ job: IBackupJob }>('CreateDownloadSuccess')
  .implement({ fields: (t) => ({ job: t.field({ type: BackupJobRef, resolve: (p) => p.job }) }) });

builder.mutationField('createDownload', (t) =>
  t.field({
    type: CreateDownloadSuccess,
    description:
      "an archive of a backup: the site's files (paths null: all of them; else those files and folders, relative to the site), and/or the database (a customer_<id>-<date>.sql file; alone: gzip-compressed)",
    args: {
      snapshotId: t.arg.id({ required: true }),
      paths: t.arg.stringList({
        description: 'null: the whole site; []: no files (with database: true, the database alone)',
      }),
      database: t.arg.boolean({ defaultValue: false }),
      format: t.arg({ type: ArchiveFormatEnum, defaultValue: 'zip' }),
      customerId: t.arg.id({ description: 'admin tokens: the customer to act for' }),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [
        JobInProgressError,
        InvalidInputError,
        NotFoundError,
        QuotaExceededError,
        RateLimitedError,
      ],
      directResult: true,
      union: { name: 'CreateDownloadResult' },
    },
    resolve: async (_root, args, ctx) => ({
      job: await requestDownload(ctx, {
        snapshotId: args.snapshotId,
        paths: args.paths,
        database: args.database,
        format: args.format ?? 'zip',
        customerId: args.customerId,
      }),
    }),
  }),
);

const RevokeDownloadSuccess = builder
  .objectRef<{ id: number }>('RevokeDownloadSuccess')
  .implement({ fields: (t) => ({ id: t.exposeID('id') }) });

builder.mutationField('revokeDownload', (t) =>
  t.field({
    type: RevokeDownloadSuccess,
    description: 'the link is 404 at once; the archive is deleted',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { signedIn: true },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'RevokeDownloadResult' } },
    resolve: async (_root, args, ctx) => ({ id: (await revokeDownload(ctx, args.id)).id }),
  }),
);
