import { createSignal, createUniqueId, For, Show } from 'solid-js';
import { SCOPE_WORDS } from '../format';
import type { BackupScope } from '../graphql/documents';

export const LABEL_MAX_LENGTH = 200;
export const MANUAL_BACKUPS_KEPT = 5;
const SCOPES: BackupScope[] = ['DATABASE', 'FILES', 'BOTH'];

export interface BackupFormProps {
  /** One job at a time: the form is disabled while one runs. */
  jobRunning: boolean;
  /** How many manual backups are kept now: at the limit, a new one replaces the oldest. */
  manualCount?: number;
  busy?: boolean;
  error?: string | null | undefined;
  onCreate: (scope: BackupScope, label: string | null) => Promise<boolean> | boolean;
}

export function BackupForm(props: BackupFormProps) {
  const [scope, setScope] = createSignal<BackupScope>('BOTH');
  const [label, setLabel] = createSignal('');
  const labelId = createUniqueId();
  const counterId = createUniqueId();
  const name = createUniqueId();
  const disabled = () => props.jobRunning || !!props.busy;

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    if (disabled()) return;
    const text = label().trim();
    const created = await props.onCreate(scope(), text === '' ? null : text);
    if (created) setLabel('');
  };

  return (
    <form class="backup-form" onSubmit={submit}>
      <fieldset class="scope-choice">
        <legend>What to back up</legend>
        <For each={SCOPES}>
          {(value) => (
            <label class="radio">
              <input
                type="radio"
                name={name}
                value={value}
                checked={scope() === value}
                onChange={() => setScope(value)}
              />
              <span>{SCOPE_WORDS[value]}</span>
            </label>
          )}
        </For>
      </fieldset>
      <div class="field">
        <label for={labelId}>
          Label <span class="muted">(optional)</span>
        </label>
        <input
          id={labelId}
          type="text"
          maxLength={LABEL_MAX_LENGTH}
          placeholder="e.g. Before the theme update"
          aria-describedby={counterId}
          value={label()}
          onInput={(event) => setLabel(event.currentTarget.value.slice(0, LABEL_MAX_LENGTH))}
        />
        <span id={counterId} class="counter muted">
          {label().length} / {LABEL_MAX_LENGTH} characters
        </span>
      </div>
      <Show when={props.error}>
        <p class="form-error" role="alert">
          {props.error}
        </p>
      </Show>
      <Show when={(props.manualCount ?? 0) >= MANUAL_BACKUPS_KEPT}>
        <p class="muted">
          You have {MANUAL_BACKUPS_KEPT} manual backups, the most we keep: a new one replaces the
          oldest.
        </p>
      </Show>
      <div class="form-actions">
        <button type="submit" class="button primary" disabled={disabled()}>
          {props.busy ? 'Starting…' : 'Create backup'}
        </button>
        <Show when={props.jobRunning}>
          <span class="muted">You can start a new backup when the current job has finished.</span>
        </Show>
      </div>
    </form>
  );
}
