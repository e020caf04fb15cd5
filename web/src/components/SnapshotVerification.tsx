import { Match, Show, Switch } from 'solid-js';
import { formatDay, formatDuration } from '../format';
import type { Snapshot } from '../graphql/documents';

export interface SnapshotVerificationProps {
  snapshot: Snapshot;
  /** Omitted: no "Verify now" (e.g. while the request is on its way). */
  onVerify?: (snapshot: Snapshot) => void;
  verifying?: boolean;
}

/**
 * What the last restore drill of a backup proved, in plain words: "Verified Tuesday: a full
 * restore takes about 40 s", or a warning that it cannot be restored and why; and "Verify now".
 */
export function SnapshotVerification(props: SnapshotVerificationProps) {
  const v = () => props.snapshot.verification;
  const underWay = () => v()?.status === 'PENDING' || v()?.status === 'RUNNING';
  return (
    <div class="snapshot-verification">
      <Switch>
        <Match when={underWay()}>
          <span class="muted">
            Check under way: this backup is being restored beside your site.
          </span>
        </Match>
        <Match when={v()?.status === 'VERIFIED' && v()}>
          {(verified) => (
            <span class="verified">
              Verified {formatDay(verified().verifiedAt)}: a full restore takes about{' '}
              {formatDuration(Math.max(1, verified().restoreSeconds ?? 0))}
            </span>
          )}
        </Match>
        <Match when={v()?.status === 'FAILED' && v()}>
          {(failed) => (
            <span class="warning" role="note">
              This backup could not be restored when we checked it on{' '}
              {formatDay(failed().verifiedAt)}: {failed().problem ?? 'the check found a problem.'}{' '}
              Make a new backup to be safe.
            </span>
          )}
        </Match>
      </Switch>
      <Show when={props.onVerify}>
        {(onVerify) => (
          <button
            type="button"
            class="link-button"
            disabled={underWay() || props.verifying}
            onClick={() => onVerify()(props.snapshot)}
          >
            Verify now
          </button>
        )}
      </Show>
    </div>
  );
}
