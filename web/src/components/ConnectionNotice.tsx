import { Show } from 'solid-js';
import type { LiveConnection } from '../graphql/client';

/** A small notice while live updates are lost; it disappears when they are back. */
export function ConnectionNotice(props: { connection: LiveConnection }) {
  return (
    <div class="connection" role="status" aria-live="polite">
      <Show when={props.connection === 'offline'}>
        <p class="connection-lost">
          <span class="spinner small" aria-hidden="true" /> Reconnecting… Live updates are paused.
        </p>
      </Show>
    </div>
  );
}
