import type { BackupScope, Job } from './graphql/documents';

const BYTE_UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Human byte count in binary steps (1 KB = 1024 bytes), as hosting panels show disk use. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 ? 1 : 0;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** "2 h 5 min", "4 min 10 s", "12 s". */
export function formatDuration(totalSeconds: number | null | undefined): string {
  if (totalSeconds === null || totalSeconds === undefined || !Number.isFinite(totalSeconds)) {
    return '—';
  }
  const seconds = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return s > 0 && m < 10 ? `${m} min ${s} s` : `${m} min`;
  return `${s} s`;
}

/** "About 3 min left"; "Almost done" under 5 seconds. */
export function formatTimeLeft(etaSeconds: number | null | undefined): string | null {
  if (etaSeconds === null || etaSeconds === undefined || !Number.isFinite(etaSeconds)) return null;
  if (etaSeconds < 5) return 'Almost done';
  return `About ${formatDuration(etaSeconds)} left`;
}

let dateTime: Intl.DateTimeFormat | undefined;
const dateTimeFormat = () => {
  dateTime ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return dateTime;
};

/** Date and time in the customer's own locale and time zone. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return dateTimeFormat().format(date);
}

export function durationBetween(start: string | null | undefined, end: string | null | undefined) {
  if (!start || !end) return null;
  const ms = new Date(end).getTime() - new Date(start).getTime();
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : null;
}

export const SCOPE_WORDS: Record<BackupScope, string> = {
  DATABASE: 'Database only',
  FILES: 'Files only',
  BOTH: 'Database & Files',
};

export const RESTORE_CHOICE_WORDS: Record<BackupScope, string> = {
  DATABASE: 'Database only',
  FILES: 'Files only',
  BOTH: 'Full restore',
};

export const DOWNLOAD_CHOICE_WORDS: Record<BackupScope, string> = {
  DATABASE: 'Database only',
  FILES: 'Files only',
  BOTH: 'Files and database',
};

/** The restore choices a snapshot allows: only the parts it contains. */
export function restoreChoices(snapshotScope: BackupScope): BackupScope[] {
  return snapshotScope === 'BOTH' ? ['DATABASE', 'FILES', 'BOTH'] : [snapshotScope];
}

const PHASE_WORDS: Record<string, string> = {
  PREPARING: 'Getting ready',
  DUMPING_DATABASE: 'Saving your database',
  UPLOADING: 'Uploading',
  APPLYING_RETENTION: 'Tidying up old backups',
  VERIFYING: 'Checking the backup',
  CHECKING_SPACE: 'Checking free disk space',
  SAFETY_SNAPSHOT: 'Preparing an undo point',
  DOWNLOADING: 'Downloading the backup',
  IMPORTING_DATABASE: 'Preparing your database',
  SWAPPING: 'Switching your site over (maintenance mode)',
  SWAPPING_FILES: 'Switching your site over (maintenance mode)',
  CLEANING_UP: 'Cleaning up',
  LISTING: 'Reading the list of files',
  READING_DUMP: 'Reading the list of tables',
  BUILDING: 'Building your download',
  ROLLING_BACK: 'Something went wrong — putting your site back as it was',
  FINISHED_AFTER_INTERRUPTION: 'Finished after an interruption on our side',
};

/** A phase in words; unknown phases are humanised ("WARMING_CACHE" → "Warming cache"). */
export function phaseWords(phase: string | null | undefined): string {
  if (!phase) return 'Waiting to start';
  const known = PHASE_WORDS[phase];
  if (known) return known;
  const words = phase.toLowerCase().replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export const STATUS_WORDS: Record<Job['status'], string> = {
  PENDING: 'Waiting',
  RUNNING: 'In progress',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export function jobTitle(job: Pick<Job, 'kind' | 'source'>): string {
  if (job.kind === 'VERIFY') return 'Check of a backup';
  if (job.kind === 'INDEX') return 'Reading a backup for browsing';
  if (job.kind === 'DOWNLOAD') return 'Download';
  if (job.kind === 'RESTORE') return job.source === 'SAFETY' ? 'Undo of a restore' : 'Restore';
  return job.source === 'DAILY' ? 'Daily backup' : 'Backup';
}

export function isActive(job: Pick<Job, 'status'>): boolean {
  return job.status === 'PENDING' || job.status === 'RUNNING';
}

export function isTerminal(job: Pick<Job, 'status'>): boolean {
  return !isActive(job);
}

/** What the customer is told when a job ends. */
export function jobOutcome(job: Pick<Job, 'kind' | 'status' | 'errorMessage'>): string {
  if (job.kind === 'VERIFY') {
    if (job.status === 'COMPLETED') return 'Check finished: the backup restores correctly.';
    if (job.status === 'CANCELLED') return 'Check cancelled.';
    return `Check failed: ${job.errorMessage?.trim() || 'the backup could not be checked.'}`;
  }
  if (job.kind === 'INDEX') {
    if (job.status === 'COMPLETED') return 'The backup is ready to browse.';
    return `The backup could not be read for browsing: ${job.errorMessage?.trim() || 'please try again.'}`;
  }
  if (job.kind === 'DOWNLOAD') {
    if (job.status === 'COMPLETED') return 'Your download is ready (see Downloads).';
    if (job.status === 'CANCELLED') return 'Download cancelled.';
    return `Download failed: ${job.errorMessage?.trim() || 'Something went wrong on our side. Please try again.'}`;
  }
  const what = job.kind === 'RESTORE' ? 'Restore' : 'Backup';
  if (job.status === 'COMPLETED') {
    return job.kind === 'RESTORE'
      ? 'Restore finished — your site is back online.'
      : 'Backup finished.';
  }
  if (job.status === 'CANCELLED') return `${what} cancelled.`;
  const reason = job.errorMessage?.trim() || 'Something went wrong on our side. Please try again.';
  return job.kind === 'RESTORE'
    ? `Restore failed: ${reason} Your site was left as it was before.`
    : `Backup failed: ${reason}`;
}

let weekday: Intl.DateTimeFormat | undefined;
let day: Intl.DateTimeFormat | undefined;

/** "Tuesday" within the last week, else "Mar 14, 2026", in the customer's locale. */
export function formatDay(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  if (now.getTime() - date.getTime() < 6 * 86_400_000 && date.getTime() <= now.getTime()) {
    weekday ??= new Intl.DateTimeFormat(undefined, { weekday: 'long' });
    return weekday.format(date);
  }
  day ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
  return day.format(date);
}
