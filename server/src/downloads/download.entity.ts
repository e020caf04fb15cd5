import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { BackupJob } from '../jobs/job.entity.js';
import { SNAPSHOT_SOURCES } from '../snapshots/snapshot-scope.js';

export const ARCHIVE_FORMATS = ['zip', 'tar_gz'] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];
export const DOWNLOAD_STATUSES = ['building', 'ready', 'failed'] as const;

/**
 * One archive of a customer's backup behind a link (DESIGN.md §11): what the api was asked for,
 * and, once the worker of `node` has built it, its file, size, sha256 and expiry. The token is
 * not stored: see download-links.ts.
 */
export const Download = defineEntity({
  name: 'Download',
  tableName: 'downloads',
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    job: () => p.manyToOne(BackupJob).deleteRule('cascade').unique(),
    customerId: p.integer().unsigned(),
    node: p.string().length(63),
    snapshotId: p.string().length(64),
    source: p.enum([...SNAPSHOT_SOURCES]),
    /** Paths relative to the site's content folder; null: the whole content folder. */
    paths: p.json<string[]>().nullable(),
    withFiles: p.boolean(),
    withDatabase: p.boolean(),
    format: p.enum([...ARCHIVE_FORMATS]),
    tokenNonce: p.string().length(64).hidden(),
    tokenHash: p.string().length(64).unique().hidden(),
    status: p.enum([...DOWNLOAD_STATUSES]).default('building'),
    /** The archive's name in the node's download folder (download-<id>.<ext>). */
    fileName: p.string().length(100).nullable(),
    /** The name the browser saves it as (Content-Disposition). */
    downloadName: p.string().length(200).nullable(),
    sizeBytes: p.bigint('number').nullable(),
    sha256: p.string().length(64).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    readyAt: p.datetime().nullable(),
    expiresAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    fileRemovedAt: p.datetime().nullable(),
    fetchCount: p.integer().unsigned().default(0),
  },
});

export type IDownload = InferEntity<typeof Download>;

export const archiveExtension = (format: ArchiveFormat) => (format === 'zip' ? 'zip' : 'tar.gz');
