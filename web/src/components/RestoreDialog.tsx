import { createSignal, createUniqueId, For, Show } from 'solid-js';
import { formatDateTime, RESTORE_CHOICE_WORDS } from '../format';
import type { BackupScope, Snapshot } from '../graphql/documents';
import { Dialog } from './Dialog';

export const CONFIRMATION_WORD = 'RESTORE';

export interface RestoreRequest {
  snapshot: Snapshot;
  scope: BackupScope;
  /** The button that opened the dialog: focus goes back to it. */
  trigger?: HTMLElement | undefined;
  /** A partial restore (Browse): only these paths and tables are put back. */
  paths?: readonly string[] | undefined;
  tables?: readonly string[] | undefined;
}

const LISTED_MAX = 20;

export interface RestoreDialogProps {
  request: RestoreRequest;
  busy?: boolean;
  /** A message for the customer when the restore was refused. */
  error?: string | null | undefined;
  onConfirm: (confirmation: string) => void;
  onClose: () => void;
}

const WHAT_IS_REPLACED: Record<BackupScope, string> = {
  DATABASE: 'your database',
  FILES: 'your site files',
  BOTH: 'your site files and database',
};

export function RestoreDialog(props: RestoreDialogProps) {
  const [typed, setTyped] = createSignal('');
  const inputId = createUniqueId();
  const confirmed = () => typed() === CONFIRMATION_WORD;
  let input: HTMLInputElement | undefined;

  const title = () =>
    props.request.snapshot.source === 'SAFETY'
      ? 'Undo the restore?'
      : `${RESTORE_CHOICE_WORDS[props.request.scope]} from this backup?`;

  return (
    <Dialog
      title={title()}
      onClose={props.onClose}
      returnFocusTo={props.request.trigger}
      initialFocus={() => input}
    >
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (confirmed() && !props.busy) props.onConfirm(typed());
        }}
      >
        <Show
          when={props.request.paths?.length || props.request.tables?.length}
          fallback={
            <p>
              This replaces {WHAT_IS_REPLACED[props.request.scope]} with the{' '}
              {props.request.snapshot.source === 'SAFETY' ? 'undo point' : 'backup'} from{' '}
              <strong>{formatDateTime(props.request.snapshot.createdAt)}</strong>
              <Show when={props.request.snapshot.label}>{(label) => <> ({label()})</>}</Show>.
            </p>
          }
        >
          <p>
            This replaces only what you selected with its version from the backup of{' '}
            <strong>{formatDateTime(props.request.snapshot.createdAt)}</strong>; everything else
            stays as it is now:
          </p>
          <ul class="dialog-facts chosen" aria-label="What will be replaced">
            <For each={(props.request.paths ?? []).slice(0, LISTED_MAX)}>
              {(path) => <li>{path}</li>}
            </For>
            <Show when={(props.request.paths?.length ?? 0) > LISTED_MAX}>
              <li>and {(props.request.paths?.length ?? 0) - LISTED_MAX} more files or folders</li>
            </Show>
            <For each={props.request.tables ?? []}>{(table) => <li>table {table}</li>}</For>
          </ul>
        </Show>
        <ul class="dialog-facts">
          <li>
            Your site goes into <strong>maintenance mode for a few seconds</strong> while we switch
            it over. Until then it keeps running.
          </li>
          <li class="warning">Changes made after this backup will be lost.</li>
          <li>
            We keep an <strong>undo point</strong> of your site as it is when we switch over, so you
            can go back to it.
          </li>
        </ul>
        <label class="field" for={inputId}>
          <span>
            Type <strong>{CONFIRMATION_WORD}</strong> to confirm
          </span>
          <input
            ref={input}
            id={inputId}
            type="text"
            autocomplete="off"
            autocapitalize="characters"
            spellcheck={false}
            value={typed()}
            onInput={(event) => setTyped(event.currentTarget.value)}
          />
        </label>
        <Show when={props.error}>
          <p class="form-error" role="alert">
            {props.error}
          </p>
        </Show>
        <div class="dialog-actions">
          <button type="button" class="button secondary" onClick={() => props.onClose()}>
            Cancel
          </button>
          <button type="submit" class="button danger" disabled={!confirmed() || props.busy}>
            {props.busy ? 'Starting…' : 'Restore'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
