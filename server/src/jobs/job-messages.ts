/** Customer-readable words for the scripts' error codes, when the script gave none. */
const MESSAGES: Record<string, string> = {
  SNAPSHOT_NOT_FOUND: 'That backup no longer exists.',
  SNAPSHOT_NOT_OWNED: 'That backup does not belong to this site.',
  INSUFFICIENT_SPACE:
    'There is not enough free disk space to restore this backup. Nothing was changed.',
  REPOSITORY_LOCKED: 'The backup storage is busy. Please try again in a few minutes.',
  REPOSITORY_UNAVAILABLE:
    'The backup storage could not be reached. Nothing was changed; our team has been told.',
  DATABASE_DUMP_FAILED: 'Your database could not be saved. Nothing was changed.',
  DATABASE_IMPORT_FAILED:
    'The database in this backup could not be loaded. Your site was left as it was.',
  SITE_NOT_FOUND: 'Your site could not be found on its server.',
  SITE_TOO_LARGE: "Your site is larger than this server's backup limit. Nothing was backed up.",
  INTERRUPTED: 'The job was interrupted before it finished. Your site was left as it was.',
  TIMED_OUT: 'The job took longer than allowed and was stopped. Your site was left as it was.',
  BACKUP_FAILED: 'The backup could not be completed.',
  INDEX_FAILED: 'The backup could not be read for browsing. Please try again later.',
  RESTORE_FAILED: 'The restore could not be completed. Your site was left as it was.',
  DOWNLOAD_FAILED: 'The download could not be prepared. Please try again.',
  PATH_NOT_FOUND: 'Some of the chosen files are not in this backup.',
  QUOTA_EXCEEDED: "This download is more than what is left of today's download allowance.",
  DOWNLOAD_LIMIT: 'You have as many downloads ready as you may have at once.',
};

export function customerMessage(code: string, scriptMessage?: string | null): string {
  return scriptMessage?.trim() || MESSAGES[code] || 'Something went wrong. Our team has been told.';
}
