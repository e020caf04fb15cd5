import type { IBackupJob } from '../jobs/job.entity.js';
import type { MailKind } from './mail-kinds.js';

export interface Mail {
  subject: string;
  text: string;
  html: string;
}

const SCOPE_WORDS = {
  database: 'the database',
  files: 'the files',
  both: 'the files and the database',
};

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function when(date: Date | null | undefined): string {
  return date ? `${new Date(date).toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'just now';
}

/** The paragraphs of each e-mail, in plain words; the same text goes in the HTML part. */
function paragraphs(kind: MailKind, job: IBackupJob): { subject: string; lines: string[] } {
  const scope = SCOPE_WORDS[job.scope];
  const reason = job.errorMessage ?? 'The reason was not recorded.';
  switch (kind) {
    case 'restore_completed':
      return {
        subject: 'Your site was restored',
        lines: [
          `The restore of ${scope} of your site finished at ${when(job.finishedAt)}.`,
          'What it replaced was kept as an undo point: you can put it back from your backups page.',
        ],
      };
    case 'restore_failed':
      return {
        subject: 'A restore of your site failed',
        lines: [
          `The restore of ${scope} of your site that started at ${when(job.startedAt)} failed: ${reason}`,
          'Your site was left exactly as it was before the restore.',
        ],
      };
    case 'daily_failed_twice':
      return {
        subject: 'Your daily backups failed twice in a row',
        lines: [
          `The daily backup of your site failed again at ${when(job.finishedAt)}: ${reason}`,
          'Your earlier backups are still there. If this goes on, please contact support.',
        ],
      };
    case 'drill_failed':
      return {
        subject: 'A test restore of one of your backups failed',
        lines: [
          `A test restore of a backup of your site failed at ${when(job.finishedAt)}: ${reason}`,
          'Your site was not touched. Please make a new backup, and contact support if this repeats.',
        ],
      };
  }
}

/** The e-mail of `kind` about `job`, for `name`: a plain text part and the same as HTML. */
export function renderMail(kind: MailKind, name: string, job: IBackupJob): Mail {
  const { subject, lines } = paragraphs(kind, job);
  const greeting = `Hello ${name},`;
  const footer = 'You can choose which e-mails you get on the Notifications page of your backups.';
  const text = [greeting, ...lines, footer].join('\n\n');
  const html = `<!doctype html><html><body>${[greeting, ...lines]
    .map((l) => `<p>${escapeHtml(l)}</p>`)
    .join('')}<p style="color:#666">${escapeHtml(footer)}</p></body></html>`;
  return { subject, text: `${text}\n`, html };
}
