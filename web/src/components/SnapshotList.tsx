import { For, type JSX, Show } from 'solid-js';
import { DOWNLOAD_CHOICE_WORDS, formatBytes, formatDateTime, SCOPE_WORDS } from '../format';
import type { BackupScope, Snapshot } from '../graphql/documents';
import { browseHref } from '../route';
import { RestoreMenu } from './RestoreMenu';
import { SnapshotVerification } from './SnapshotVerification';
import { snapshotName } from './snapshot-name';

export interface SnapshotListProps {
  snapshots: readonly Snapshot[];
  /** The list's accessible name, e.g. "Manual backups". */
  label: string;
  empty: JSX.Element;
  /** Restoring is not offered while a job runs. */
  restoreDisabled?: boolean;
  onRestore: (snapshot: Snapshot, scope: BackupScope, trigger: HTMLElement) => void;
  /** "Verify now": a restore drill of the backup, beside the site. */
  onVerify?: (snapshot: Snapshot) => void;
  /** Offers "Download" (site, database or both) beside "Restore" when given. */
  onDownload?: (snapshot: Snapshot, scope: BackupScope, trigger: HTMLElement) => void;
  downloadDisabled?: boolean;
}

function contents(snapshot: Snapshot): string {
  if (snapshot.source === 'DAILY') return `${SCOPE_WORDS[snapshot.scope]} (automatic)`;
  if (snapshot.source === 'SAFETY') return `${SCOPE_WORDS[snapshot.scope]} (undo point)`;
  return SCOPE_WORDS[snapshot.scope];
}

export function SnapshotList(props: SnapshotListProps) {
  return (
    <Show when={props.snapshots.length > 0} fallback={<p class="empty">{props.empty}</p>}>
      <ul class="snapshot-list" aria-label={props.label}>
        <For each={props.snapshots}>
          {(snapshot) => {
            const when = () => formatDateTime(snapshot.createdAt);
            return (
              <li class="snapshot">
                <div class="snapshot-info">
                  <time class="snapshot-date" datetime={snapshot.createdAt}>
                    {when()}
                  </time>
                  <span class="snapshot-contents">{contents(snapshot)}</span>
                  <Show when={snapshot.label}>
                    {(label) => <span class="snapshot-label">“{label()}”</span>}
                  </Show>
                  <span class="snapshot-size">{formatBytes(snapshot.sizeBytes)}</span>
                  <SnapshotVerification snapshot={snapshot} onVerify={props.onVerify} />
                </div>
                <div class="snapshot-actions">
                  <a
                    class="button secondary"
                    href={browseHref(snapshot.id)}
                    aria-label={`Browse ${snapshotName(snapshot)}`}
                  >
                    Browse
                  </a>
                  <Show when={props.onDownload}>
                    {(onDownload) => (
                      <RestoreMenu
                        snapshot={snapshot}
                        label="Download"
                        accessibleLabel={`Download ${snapshotName(snapshot)}`}
                        words={DOWNLOAD_CHOICE_WORDS}
                        disabled={props.downloadDisabled}
                        onChoose={(scope, trigger) => onDownload()(snapshot, scope, trigger)}
                      />
                    )}
                  </Show>
                  <RestoreMenu
                    snapshot={snapshot}
                    disabled={props.restoreDisabled}
                    onChoose={(scope, trigger) => props.onRestore(snapshot, scope, trigger)}
                  />
                </div>
              </li>
            );
          }}
        </For>
      </ul>
    </Show>
  );
}
