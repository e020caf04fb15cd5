import type { EntityManager } from '@mikro-orm/mariadb';
import { recordAudit } from '../audit/audit.js';
import { actorOf, mayActFor, type Viewer } from '../auth/viewer.js';
import { AppError, InvalidInputError, NotFoundError } from '../graphql/errors.js';
import { parseId } from '../graphql/ids.js';
import type { IBackupJob, JobScope } from '../jobs/job.entity.js';
import {
  checkJobRate,
  type RequestScope,
  requester,
  targetCustomer,
} from '../jobs/job-requests.js';
import { findCustomerSnapshot, SNAPSHOT_ID_PATTERN } from '../snapshots/catalog-read.js';
import { indexedPaths } from '../snapshots/index-read.js';
import type { ISnapshot } from '../snapshots/snapshot.entity.js';
import { asSnapshotSource } from '../snapshots/snapshot-scope.js';
import { type ArchiveFormat, Download, type IDownload } from './download.entity.js';
import { downloadAllowance, liveLimitMessage, quotaMessage } from './download-limits.js';
import { linkKey, newNonce, tokenFor, tokenHash } from './download-links.js';
import { validatePaths } from './download-paths.js';

/** A customer at their limit of live archives or of bytes for the day. */
export class QuotaExceededError extends AppError {
  readonly code = 'QUOTA_EXCEEDED';
  constructor(message: string) {
    super(message);
    this.name = 'QuotaExceededError';
  }
}

/**
 * Paths the snapshot does not hold. An indexed snapshot (snapshot_entries) answers here: an
 * absent path is INVALID_INPUT before anything is queued. A snapshot not indexed is checked by
 * the worker, which refuses a path that is not in it (the job FAILS with PATH_NOT_FOUND): a
 * download never needs the index.
 */
export async function checkPathsInSnapshot(
  em: EntityManager,
  snapshot: ISnapshot,
  paths: readonly string[],
): Promise<void> {
  if (!snapshot.indexedAt) return;
  const unique = [...new Set(paths)];
  const found = await indexedPaths(em, snapshot.id, unique);
  const missing = unique.find((p) => !found.has(p));
  if (missing !== undefined) {
    throw new InvalidInputError(
      `This backup has no ${JSON.stringify(missing.slice(0, 200))}.`,
      'paths',
    );
  }
}

export interface DownloadInput {
  snapshotId: string;
  /** null: the whole content folder; []: no files (the database alone). */
  paths?: readonly string[] | null;
  database?: boolean | null;
  format: ArchiveFormat;
  customerId?: string | null;
}

const holds = (snapshot: ISnapshot, part: 'files' | 'database') =>
  snapshot.scope === 'both' || snapshot.scope === part;

/**
 * A DOWNLOAD job and its downloads row, written together. Everything is checked before
 * anything is queued: the paths' syntax, the snapshot in the customer's own catalog
 * (another's is NOT_FOUND), that it holds what is asked, the live archives and the day's
 * bytes, the job rate.
 */
export async function requestDownload(
  scope: RequestScope,
  input: DownloadInput,
): Promise<IBackupJob> {
  const customer = await targetCustomer(scope, input.customerId);
  const viewer = scope.viewer as Viewer;
  if (!SNAPSHOT_ID_PATTERN.test(input.snapshotId)) {
    throw new InvalidInputError(
      'A snapshot id is 8 to 64 characters of 0-9 and a-f.',
      'snapshotId',
    );
  }
  const paths =
    input.paths === null || input.paths === undefined ? null : validatePaths(input.paths);
  const withFiles = paths === null || paths.length > 0;
  const withDatabase = input.database === true;
  if (!withFiles && !withDatabase) {
    throw new InvalidInputError('Choose files, folders or the database to download.', 'paths');
  }
  const snapshot = await findCustomerSnapshot(scope.em, customer.id, input.snapshotId);
  if (!snapshot) throw new NotFoundError('There is no such backup.');
  if (withFiles && !holds(snapshot, 'files')) {
    throw new InvalidInputError('This backup holds only the database.', 'paths');
  }
  if (withDatabase && !holds(snapshot, 'database')) {
    throw new InvalidInputError('This backup holds only the files.', 'database');
  }
  if (paths?.length) await checkPathsInSnapshot(scope.em, snapshot, paths);
  const config = scope.services.config;
  const allowance = await downloadAllowance(scope.em.fork(), config, customer.id);
  if (allowance.live >= allowance.maxLive) {
    throw new QuotaExceededError(liveLimitMessage(allowance.maxLive));
  }
  if (allowance.remainingBytes <= 0) throw new QuotaExceededError(quotaMessage());
  await checkJobRate(scope, customer.id);
  const jobScope: JobScope = withFiles && withDatabase ? 'both' : withFiles ? 'files' : 'database';
  const key = await linkKey(config);
  const nonce = newNonce();
  const job = await scope.services.jobs.create({
    customer,
    kind: 'download',
    scope: jobScope,
    source: asSnapshotSource(snapshot.source),
    snapshotId: snapshot.snapshotId,
    label: snapshot.label ?? null,
    ...requester(viewer),
    alongside: (em, newJob) => {
      em.create(Download, {
        job: newJob,
        customerId: customer.id,
        node: customer.host,
        snapshotId: snapshot.snapshotId,
        source: asSnapshotSource(snapshot.source),
        paths: withFiles ? paths : null,
        withFiles,
        withDatabase,
        format: input.format,
        tokenNonce: nonce,
        tokenHash: tokenHash(tokenFor(key, nonce)),
        status: 'building',
      });
    },
  });
  await recordAudit(scope.em, {
    action: 'download_requested',
    actor: actorOf(viewer),
    customerId: customer.id,
    targetId: job.id,
    ip: scope.ip,
    details: {
      snapshotId: snapshot.snapshotId,
      paths: paths?.length ?? null,
      database: withDatabase,
      format: input.format,
    },
  });
  return job;
}

/** The download, if the viewer may see it. */
export async function findVisibleDownload(
  scope: Pick<RequestScope, 'em' | 'viewer'>,
  id: string | number,
): Promise<IDownload | null> {
  const downloadId = parseId(id);
  if (downloadId === null || !scope.viewer) return null;
  const download = await scope.em.fork().findOne(Download, { id: downloadId });
  if (!download || !mayActFor(scope.viewer, download.customerId)) return null;
  return download;
}

/** Revokes a link at once (404 from then on); the worker of its node deletes the file. */
export async function revokeDownload(scope: RequestScope, id: string): Promise<IDownload> {
  const found = await findVisibleDownload(scope, id);
  if (!found) throw new NotFoundError('There is no such download.');
  const em = scope.em.fork();
  await em.nativeUpdate(Download, { id: found.id, revokedAt: null }, { revokedAt: new Date() });
  await recordAudit(scope.em, {
    action: 'download_revoked',
    actor: actorOf(scope.viewer),
    customerId: found.customerId,
    targetId: found.id,
    ip: scope.ip,
  });
  return em.findOneOrFail(Download, { id: found.id });
}

/** A customer's links that can be fetched now, newest first. */
export function liveDownloads(em: EntityManager, customerId: number): Promise<IDownload[]> {
  return em
    .fork()
    .find(
      Download,
      { customerId, status: 'ready', revokedAt: null, expiresAt: { $gt: new Date() } },
      { orderBy: { id: 'desc' }, limit: 50 },
    );
}
