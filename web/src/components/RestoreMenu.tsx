import { createSignal, createUniqueId, For, onCleanup, Show } from 'solid-js';
import { RESTORE_CHOICE_WORDS, restoreChoices } from '../format';
import type { BackupScope, Snapshot } from '../graphql/documents';
import { snapshotName } from './snapshot-name';

export interface RestoreMenuProps {
  snapshot: Snapshot;
  disabled?: boolean;
  /** Words for the button; "Restore" by default. */
  label?: string;
  /** Accessible name of the button and its menu; by default it names the snapshot
   * ("Restore the backup of …"), so rows with the same button tell apart. */
  accessibleLabel?: string;
  /** Words for each choice; the restore's by default. */
  words?: Record<BackupScope, string>;
  onChoose: (scope: BackupScope, trigger: HTMLElement) => void;
}

/** A menu button offering only the parts of the site that this snapshot contains. */
export function RestoreMenu(props: RestoreMenuProps) {
  const [open, setOpen] = createSignal(false);
  const menuId = createUniqueId();
  const name = () =>
    props.accessibleLabel ?? `${props.label ?? 'Restore'} ${snapshotName(props.snapshot)}`;
  let button: HTMLButtonElement | undefined;
  let menu: HTMLDivElement | undefined;

  const items = () =>
    menu ? Array.from(menu.querySelectorAll<HTMLElement>('[role=menuitem]')) : [];

  const focusItem = (index: number) => {
    const all = items();
    if (all.length === 0) return;
    all[(index + all.length) % all.length]?.focus();
  };

  const openMenu = (focusIndex = 0) => {
    setOpen(true);
    focusItem(focusIndex);
  };

  const close = (returnFocus: boolean) => {
    setOpen(false);
    if (returnFocus) button?.focus();
  };

  const onDocumentClick = (event: MouseEvent) => {
    const target = event.target as Node | null;
    if (open() && target && !menu?.contains(target) && !button?.contains(target)) close(false);
  };
  document.addEventListener('click', onDocumentClick);
  onCleanup(() => document.removeEventListener('click', onDocumentClick));

  const onMenuKeyDown = (event: KeyboardEvent) => {
    const all = items();
    const current = all.indexOf(document.activeElement as HTMLElement);
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        focusItem(current + 1);
        break;
      case 'ArrowUp':
        event.preventDefault();
        focusItem(current - 1);
        break;
      case 'Home':
        event.preventDefault();
        focusItem(0);
        break;
      case 'End':
        event.preventDefault();
        focusItem(all.length - 1);
        break;
      case 'Escape':
        event.preventDefault();
        close(true);
        break;
      case 'Tab':
        close(false);
        break;
    }
  };

  const choose = (scope: BackupScope) => {
    setOpen(false);
    if (button) props.onChoose(scope, button);
  };

  return (
    <div class="menu">
      <button
        ref={button}
        type="button"
        class="button secondary"
        aria-haspopup="menu"
        aria-expanded={open()}
        aria-controls={open() ? menuId : undefined}
        aria-label={name()}
        disabled={props.disabled}
        onClick={() => (open() ? close(false) : openMenu())}
        onKeyDown={(event) => {
          if (event.key === 'ArrowDown') {
            event.preventDefault();
            openMenu(0);
          } else if (event.key === 'ArrowUp') {
            event.preventDefault();
            openMenu(-1);
          }
        }}
      >
        {props.label ?? 'Restore'} <span aria-hidden="true">▾</span>
      </button>
      <Show when={open()}>
        <div
          ref={menu}
          id={menuId}
          class="menu-list"
          role="menu"
          aria-label={name()}
          onKeyDown={onMenuKeyDown}
        >
          <For each={restoreChoices(props.snapshot.scope)}>
            {(scope) => (
              <button type="button" role="menuitem" tabIndex={-1} onClick={() => choose(scope)}>
                {(props.words ?? RESTORE_CHOICE_WORDS)[scope]}
              </button>
            )}
          </For>
        </div>
      </Show>
    </div>
  );
}
