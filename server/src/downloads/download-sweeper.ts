import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { Config } from '../config/config.js';
import type { Logger } from '../infra/logger.js';
import { Download } from './download.entity.js';

export interface SweeperDeps {
  orm: MikroORM;
  config: Pick<
    Config,
    'BACKUPS_NODE' | 'BACKUPS_DOWNLOAD_DIR' | 'BACKUPS_DOWNLOAD_TIMEOUT_SECONDS'
  >;
  logger: Logger;
}

/**
 * Deletes this node's archives whose links expired or were revoked (their rows stay, for the
 * day's quota and the audit), and what a killed build left (`.download-*` older than a build
 * may take). Returns how many archives it deleted.
 */
export async function sweepDownloads(deps: SweeperDeps, now = new Date()): Promise<number> {
  const { config, logger } = deps;
  const em = deps.orm.em.fork();
  const gone = await em.find(Download, {
    node: config.BACKUPS_NODE,
    fileName: { $ne: null },
    fileRemovedAt: null,
    $or: [{ expiresAt: { $lte: now } }, { revokedAt: { $ne: null } }],
  });
  for (const download of gone) {
    const file = path.join(config.BACKUPS_DOWNLOAD_DIR, path.basename(download.fileName ?? ''));
    await rm(file, { force: true });
    await em.nativeUpdate(Download, { id: download.id }, { fileRemovedAt: now });
    logger.info({ download: download.id, customerId: download.customerId }, 'download deleted');
  }
  const staleBefore = now.getTime() - (config.BACKUPS_DOWNLOAD_TIMEOUT_SECONDS + 3600) * 1000;
  const entries = await readdir(config.BACKUPS_DOWNLOAD_DIR).catch(() => [] as string[]);
  for (const name of entries.filter((n) => n.startsWith('.download-'))) {
    const full = path.join(config.BACKUPS_DOWNLOAD_DIR, name);
    const info = await stat(full).catch(() => null);
    if (info && info.mtimeMs < staleBefore) await rm(full, { recursive: true, force: true });
  }
  // An archive whose row never became READY (the worker was killed, or the database was away,
  // between the build and the row) once its job has ended: nobody can fetch it.
  const archives = new Map<number, string>();
  for (const name of entries) {
    const id = /^download-(\d+)[.-]/.exec(name)?.[1];
    if (id) archives.set(Number(id), name);
  }
  if (archives.size > 0) {
    const rows = await em.find(
      Download,
      { id: { $in: [...archives.keys()] } },
      { populate: ['job'], fields: ['id', 'status', 'node', 'job.status'] },
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [id, name] of archives) {
      const row = byId.get(id);
      if (row && row.node !== config.BACKUPS_NODE) continue;
      const jobActive = row && ['pending', 'running'].includes(String(row.job.status));
      if (row && (row.status === 'ready' || jobActive)) continue;
      await rm(path.join(config.BACKUPS_DOWNLOAD_DIR, name), { force: true });
      logger.info({ download: id }, 'an archive without a ready download deleted');
    }
  }
  return gone.length;
}

/** sweepDownloads now and every BACKUPS_DOWNLOAD_SWEEP_SECONDS. */
export function startDownloadSweeper(
  deps: SweeperDeps & { config: Pick<Config, 'BACKUPS_DOWNLOAD_SWEEP_SECONDS'> },
): { stop(): void; sweep(): Promise<number> } {
  const sweep = () =>
    sweepDownloads(deps).catch((error: unknown) => {
      deps.logger.error({ err: error }, 'deleting expired downloads failed');
      return 0;
    });
  void sweep();
  const timer = setInterval(() => void sweep(), deps.config.BACKUPS_DOWNLOAD_SWEEP_SECONDS * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer), sweep };
}
