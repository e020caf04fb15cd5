import type { EntityManager } from '@mikro-orm/mariadb';
import type { Config } from '../config/config.js';

type Limits = Pick<Config, 'BACKUPS_DOWNLOAD_MAX_LIVE' | 'BACKUPS_DOWNLOAD_MAX_BYTES_PER_DAY'>;

export interface DownloadAllowance {
  /** Archives ready and unexpired, or being built. */
  live: number;
  /** Bytes of the archives built in the last 24 hours (revoked and expired ones count). */
  usedBytes: number;
  remainingBytes: number;
  maxLive: number;
}

/**
 * What a customer may still download: the live archives (DOWNLOAD_MAX_LIVE) and the bytes of
 * the last 24 hours (DOWNLOAD_MAX_BYTES_PER_DAY, a rolling day: no rush at midnight). Read by
 * the api before queueing and by the worker before building. `exceptJob`: the job asking.
 */
export async function downloadAllowance(
  em: EntityManager,
  config: Limits,
  customerId: number,
  exceptJob: number | null = null,
): Promise<DownloadAllowance> {
  const now = new Date();
  const [row] = await em
    .getConnection()
    .execute<{ live: number | string; used: number | string }[]>(
      `select
       (select count(*) from downloads d join backup_jobs j on j.id = d.job_id
         where d.customer_id = ? and d.revoked_at is null and d.job_id <> ?
           and ((d.status = 'ready' and d.expires_at > ?)
             or (d.status = 'building' and j.status in ('pending', 'running')))) as live,
       (select coalesce(sum(size_bytes), 0) from downloads
         where customer_id = ? and created_at > ?) as used`,
      [customerId, exceptJob ?? 0, now, customerId, new Date(now.getTime() - 86_400_000)],
    );
  const usedBytes = Number(row?.used ?? 0);
  return {
    live: Number(row?.live ?? 0),
    usedBytes,
    remainingBytes: Math.max(0, config.BACKUPS_DOWNLOAD_MAX_BYTES_PER_DAY - usedBytes),
    maxLive: config.BACKUPS_DOWNLOAD_MAX_LIVE,
  };
}

export const liveLimitMessage = (max: number) =>
  `You have ${max} download${max === 1 ? '' : 's'} ready or being prepared, as many as you may have at once. Delete one, or wait until one expires.`;

export const quotaMessage = () =>
  "You have used today's download allowance. Please try again tomorrow, or download less.";
