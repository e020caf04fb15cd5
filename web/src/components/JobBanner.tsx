import { Show } from 'solid-js';
import { formatBytes, formatTimeLeft, phaseWords, SCOPE_WORDS } from '../format';
import type { Job } from '../graphql/documents';

export const JOB_BANNER_ID = 'job-banner';
/** A download is built beside a backup or restore: it has a banner of its own. */
export const DOWNLOAD_BANNER_ID = 'download-banner';

/** Keyboard focus goes to the banner when the control that started a job becomes disabled. */
export function focusJobBanner(id: string = JOB_BANNER_ID) {
  document.getElementById(id)?.focus();
}

export interface JobBannerProps {
  job: Job;
  /** The download's banner: its own id and name, beside the backup's or restore's. */
  download?: boolean;
  cancelling?: boolean;
  onCancel?: () => void;
}

function heading(job: Job): string {
  if (job.kind === 'DOWNLOAD') return 'Preparing your download';
  if (job.kind === 'RESTORE') {
    return job.source === 'SAFETY' ? 'Undoing the last restore' : 'Restoring your site';
  }
  return job.source === 'DAILY' ? 'Daily backup running' : 'Creating a backup';
}

/** What is happening now, updated live: kind, phase in words, progress, bytes, time left. */
export function JobBanner(props: JobBannerProps) {
  const percent = () => Math.round(Math.min(1, Math.max(0, props.job.progress)) * 100);
  const waiting = () => props.job.status === 'PENDING';
  const timeLeft = () => formatTimeLeft(props.job.etaSeconds);
  const bytes = () =>
    props.job.bytesDone != null && props.job.bytesTotal != null && props.job.bytesTotal > 0
      ? `${formatBytes(props.job.bytesDone)} of ${formatBytes(props.job.bytesTotal)}`
      : props.job.bytesDone != null
        ? formatBytes(props.job.bytesDone)
        : null;

  return (
    <section
      id={props.download ? DOWNLOAD_BANNER_ID : JOB_BANNER_ID}
      class="banner"
      role="status"
      aria-live="polite"
      aria-label={props.download ? 'Download being prepared' : 'Current job'}
      tabIndex={-1}
    >
      <div class="banner-head">
        <span class="spinner" aria-hidden="true" />
        <p class="banner-title">
          <strong>{heading(props.job)}</strong>{' '}
          <span class="muted">({SCOPE_WORDS[props.job.scope]})</span>
        </p>
      </div>
      <p class="banner-phase">
        {waiting() ? 'Waiting to start…' : `${phaseWords(props.job.phase)}…`}
      </p>
      <progress
        class="banner-progress"
        max={100}
        value={percent()}
        aria-label="Progress"
        aria-valuetext={`${percent()} %`}
      />
      <p class="banner-details">
        <span>{percent()} %</span>
        <Show when={bytes()}>{(text) => <span>{text()}</span>}</Show>
        <Show when={timeLeft()}>{(text) => <span>{text()}</span>}</Show>
      </p>
      <Show when={waiting() && props.onCancel}>
        <button
          type="button"
          class="button secondary"
          disabled={props.cancelling}
          onClick={() => props.onCancel?.()}
        >
          {props.cancelling ? 'Cancelling…' : 'Cancel'}
        </button>
      </Show>
    </section>
  );
}
