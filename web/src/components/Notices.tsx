import { For } from 'solid-js';

export interface Notice {
  id: number;
  text: string;
  tone: 'success' | 'error' | 'info';
}

export interface NoticesProps {
  notices: readonly Notice[];
  onDismiss: (id: number) => void;
}

/** Messages about what just happened. */
export function Notices(props: NoticesProps) {
  return (
    // One region that stays in the page, so additions are announced; failures interrupt.
    <div class="notices" role="status" aria-label="Messages" aria-live="polite">
      <For each={props.notices}>
        {(notice) => (
          <div class={`notice notice-${notice.tone}`}>
            {/* The alert is the message alone, without the dismiss button's "×". */}
            <p role={notice.tone === 'error' ? 'alert' : undefined}>{notice.text}</p>
            <button
              type="button"
              class="button link"
              aria-label="Dismiss message"
              onClick={() => props.onDismiss(notice.id)}
            >
              ×
            </button>
          </div>
        )}
      </For>
    </div>
  );
}
