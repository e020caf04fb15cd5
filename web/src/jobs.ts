import { isActive } from './format';
import type { Job } from './graphql/documents';

export type LiveJobs = Readonly<Record<string, Job>>;

const newestFirst = (a: Job, b: Job) => b.createdAt.localeCompare(a.createdAt);

/** A backup or restore: what touches the site, one at a time (checks and reads run beside). */
export const touchesSite = (job: Pick<Job, 'kind'>) =>
  job.kind === 'BACKUP' || job.kind === 'RESTORE';
const isActiveSiteJob = (job: Job) => touchesSite(job) && isActive(job);
const isActiveDownload = (job: Job) => job.kind === 'DOWNLOAD' && isActive(job);

/**
 * The backup or restore running now: the live state of the one the page loaded, or any active
 * live one. Only these block another backup or restore (DESIGN.md §10): a download, a check
 * of a backup (VERIFY) and reading one (INDEX) only read the repository and never count.
 */
export function currentJob(loaded: Job | null | undefined, live: LiveJobs): Job | null {
  if (loaded) {
    const latest = live[loaded.id] ?? loaded;
    if (isActiveSiteJob(latest)) return latest;
  }
  return Object.values(live).filter(isActiveSiteJob).sort(newestFirst)[0] ?? null;
}

/**
 * The download being built now (at most one per customer, DESIGN.md §10), from the jobs the
 * page loaded with their live changes applied, or any active live one. It has a banner of its
 * own and blocks only another download, never a backup or restore.
 */
export function currentDownload(loaded: readonly Job[], live: LiveJobs): Job | null {
  const latest = loaded.map((job) => live[job.id] ?? job);
  const ids = new Set(loaded.map((job) => job.id));
  const added = Object.values(live).filter((job) => !ids.has(job.id));
  return [...added, ...latest].filter(isActiveDownload).sort(newestFirst)[0] ?? null;
}

/** The job history as loaded, with live changes applied and new jobs added on top. */
export function mergeJobs(loaded: readonly Job[], live: LiveJobs, limit = 10): Job[] {
  const ids = new Set(loaded.map((job) => job.id));
  const added = Object.values(live).filter((job) => !ids.has(job.id));
  return [...added, ...loaded.map((job) => live[job.id] ?? job)].sort(newestFirst).slice(0, limit);
}
