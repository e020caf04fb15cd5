import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { recordAudit } from '../../audit/audit.js';
import { archiveExtension, Download, type IDownload } from '../../downloads/download.entity.js';
import {
  downloadAllowance,
  liveLimitMessage,
  quotaMessage,
} from '../../downloads/download-limits.js';
import type { ScriptEvent } from '../../executors/script-events.js';
import { scriptScope } from '../../snapshots/snapshot-scope.js';
import { retryWhileDisconnected } from '../db-retry.js';
import { failureOf, succeeded } from './failure.js';
import { type Task, type TaskContext, TaskRefusal } from './task.js';

/**
 * DOWNLOAD: scripts/customer-download builds an archive of the customer's part of a snapshot
 * in this node's download folder; the task reads what was asked from the job's downloads row,
 * refuses before building when the customer is at their limits, and when the script names the
 * archive it built, the row gets the file, size, sha256 and expiry and the job is COMPLETED
 * (its BackupJob.download is the link), with download.ready announced in the same transaction.
 * The event names the archive but not its link: only the api holds the link key
 * (download-links.ts), so a receiver reads the link from `job(id) { download { url } }`.
 */
export const downloadTask: Task = {
  kind: 'download',
  script: 'customer-download',
  args() {
    throw new Error('a download job is prepared from its downloads row');
  },
  async prepare(ctx) {
    const { job, config, em } = ctx;
    const download = await em.fork().findOne(Download, { job: job.id });
    if (!download || !job.snapshotId) {
      throw new TaskRefusal(
        'DOWNLOAD_FAILED',
        'This download was not asked for properly; please ask for it again.',
      );
    }
    if (download.node !== config.BACKUPS_NODE) {
      throw new TaskRefusal('DOWNLOAD_FAILED', 'This download belongs to another server.');
    }
    const allowance = await downloadAllowance(em.fork(), config, job.customer.id, job.id);
    if (allowance.live >= allowance.maxLive) {
      throw new TaskRefusal('DOWNLOAD_LIMIT', liveLimitMessage(allowance.maxLive));
    }
    if (allowance.remainingBytes <= 0) throw new TaskRefusal('QUOTA_EXCEEDED', quotaMessage());
    const args = [
      String(job.customer.id),
      job.snapshotId,
      download.source,
      scriptScope(job.scope),
      '--format',
      download.format,
      '--out',
      // 128 random bits: where nginx sends archives itself, its group may open a file of the
      // folder by name but not list it (customer-download, BACKUPS_DOWNLOAD_GROUP).
      `download-${download.id}-${randomBytes(16).toString('hex')}.${archiveExtension(download.format)}`,
      '--max-bytes',
      String(allowance.remainingBytes),
      '--job',
      String(job.id),
    ];
    const paths = download.withFiles ? download.paths : null;
    if (!paths?.length) return { args };
    // NUL-separated on stdin: a thousand long paths do not fit in an argument list.
    return { args: [...args, '--paths-from-stdin'], input: `${paths.join('\0')}\0` };
  },
  timeoutMs: (config) => config.BACKUPS_DOWNLOAD_TIMEOUT_SECONDS * 1000,
  // Builds may be long: they wait in a lane of their own, never in front of a restore.
  lane: () => 'downloads',
  phases: {
    VERIFYING: [0, 0.05],
    CHECKING_SPACE: [0.05, 0.08],
    BUILDING: [0.08, 0.99],
  },
  async onEvent(event, ctx) {
    if (event.type === 'archive') {
      const now = new Date();
      const expiresAt = new Date(now.getTime() + ctx.config.BACKUPS_DOWNLOAD_HOURS * 3600_000);
      // The archive is on disk: its row must learn of it, also across a database restart
      // (db-retry.ts), or the file is deleted, never left behind without a live download.
      let download: IDownload;
      try {
        download = await retryWhileDisconnected(() => recordArchive(event, ctx, now, expiresAt), {
          probe: () => ctx.em.fork().getConnection().execute('select 1'),
        });
      } catch (error) {
        await rm(path.join(ctx.config.BACKUPS_DOWNLOAD_DIR, path.basename(event.file)), {
          force: true,
        });
        throw error;
      }
      ctx.announce({
        event: 'download.ready',
        data: {
          download: {
            id: String(download.id),
            format: download.format.toUpperCase(),
            sizeBytes: event.size,
            sha256: event.sha256,
            expiresAt: expiresAt.toISOString(),
          },
        },
      });
      await ctx.complete({ bytesDone: event.size, bytesTotal: event.size });
    }
  },
  outcome(result, ctx) {
    if (succeeded(result) && ctx.completed) return { status: 'completed' };
    return failureOf(result, 'DOWNLOAD_FAILED');
  },
};

/** The download's row READY with its archive, and the audit line (one attempt). */
async function recordArchive(
  event: Extract<ScriptEvent, { type: 'archive' }>,
  ctx: TaskContext,
  now: Date,
  expiresAt: Date,
): Promise<IDownload> {
  const em = ctx.em.fork();
  const download = await em.findOneOrFail(Download, { job: ctx.job.id });
  em.assign(download, {
    status: 'ready',
    fileName: event.file,
    downloadName: event.name,
    sizeBytes: event.size,
    sha256: event.sha256,
    readyAt: now,
    expiresAt,
  });
  await em.flush();
  await recordAudit(em, {
    action: 'download_created',
    actor: { kind: 'operator', id: `worker:${ctx.config.BACKUPS_NODE}` },
    customerId: ctx.job.customer.id,
    targetId: download.id,
    details: { jobId: ctx.job.id, sizeBytes: event.size, sha256: event.sha256, expiresAt },
  });
  return download;
}
