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

/** Messages about what just happened; failures are announced at once, the rest politely. */
export function Notices(props: NoticesProps) {
  return (
    <div class="notices">
      <For each={props.notices}>
        {(notice) => (
          <div
            class={`notice notice-${notice.tone}`}
            role={notice.tone === 'error' ? 'alert' : 'status'}
          >
            <p>{notice.text}</p>
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
