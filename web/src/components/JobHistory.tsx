import { For, Show } from 'solid-js';
import {
  durationBetween,
  formatDateTime,
  formatDuration,
  jobTitle,
  phaseWords,
  SCOPE_WORDS,
  STATUS_WORDS,
} from '../format';
import type { Job } from '../graphql/documents';

export interface JobHistoryProps {
  jobs: readonly Job[];
}

export function JobHistory(props: JobHistoryProps) {
  return (
    <Show when={props.jobs.length > 0} fallback={<p class="empty">No backups or restores yet.</p>}>
      <ul class="job-list" aria-label="Recent backups and restores">
        <For each={props.jobs}>
          {(job) => {
            const duration = () => durationBetween(job.startedAt, job.finishedAt);
            return (
              <li class="job">
                <div class="job-main">
                  <span class="job-title">
                    {jobTitle(job)} <span class="muted">· {SCOPE_WORDS[job.scope]}</span>
                  </span>
                  <span class={`job-status status-${job.status.toLowerCase()}`}>
                    {STATUS_WORDS[job.status]}
                  </span>
                </div>
                <div class="job-meta muted">
                  <time datetime={job.createdAt}>{formatDateTime(job.createdAt)}</time>
                  <Show when={duration() !== null}>
                    <span>took {formatDuration(duration())}</span>
                  </Show>
                  <Show when={job.kind === 'RESTORE' && job.snapshot}>
                    {(snapshot) => (
                      <span>
                        from the {snapshot().source === 'SAFETY' ? 'undo point' : 'backup'} of{' '}
                        {formatDateTime(snapshot().createdAt)}
                      </span>
                    )}
                  </Show>
                  <Show when={job.label}>{(label) => <span>“{label()}”</span>}</Show>
                </div>
                <Show
                  when={job.status === 'COMPLETED' && job.phase === 'FINISHED_AFTER_INTERRUPTION'}
                >
                  <p class="muted">{phaseWords(job.phase)}: your site was restored.</p>
                </Show>
                <Show when={job.status === 'FAILED'}>
                  <p class="job-error">
                    {job.errorMessage?.trim() || 'Something went wrong on our side.'}
                  </p>
                </Show>
              </li>
            );
          }}
        </For>
      </ul>
    </Show>
  );
}
