import { isActive } from './format';
import type { Job } from './graphql/documents';

export type LiveJobs = Readonly<Record<string, Job>>;

const newestFirst = (a: Job, b: Job) => b.createdAt.localeCompare(a.createdAt);

/** A backup or restore: what touches the site, one at a time (checks and reads run beside). */
export const touchesSite = (job: Pick<Job, 'kind'>) =>
  job.kind === 'BACKUP' || job.kind === 'RESTORE';
/** What the banner follows: the site's backup or restore, or a download being built. */
const isActiveSiteJob = (job: Job) =>
  (touchesSite(job) || job.kind === 'DOWNLOAD') && isActive(job);

/**
 * The backup, restore or download running now: the live state of the one the page loaded, or
 * any active live one. A check of a backup (VERIFY) or reading one (INDEX) never counts.
 */
export function currentJob(loaded: Job | null | undefined, live: LiveJobs): Job | null {
  if (loaded) {
    const latest = live[loaded.id] ?? loaded;
    if (isActiveSiteJob(latest)) return latest;
  }
  return Object.values(live).filter(isActiveSiteJob).sort(newestFirst)[0] ?? null;
}

/** The job history as loaded, with live changes applied and new jobs added on top. */
export function mergeJobs(loaded: readonly Job[], live: LiveJobs, limit = 10): Job[] {
  const ids = new Set(loaded.map((job) => job.id));
  const added = Object.values(live).filter((job) => !ids.has(job.id));
  return [...added, ...loaded.map((job) => live[job.id] ?? job)].sort(newestFirst).slice(0, limit);
}
