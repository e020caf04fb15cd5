import { For, Show } from 'solid-js';
import { formatBytes, formatDateTime } from '../format';
import type { Download } from '../graphql/documents';

export interface DownloadListProps {
  downloads: readonly Download[];
  /** The list's accessible name; "Your downloads" by default. */
  label?: string;
  revoking?: boolean;
  onRevoke: (download: Download) => void;
}

function contents(download: Download): string {
  const files =
    download.paths === null
      ? 'Files'
      : download.paths.length > 0
        ? `${download.paths.length} chosen file${download.paths.length === 1 ? '' : 's'} or folder${download.paths.length === 1 ? '' : 's'}`
        : '';
  if (files && download.database) return `${files} and database`;
  return files || 'Database';
}

/** The customer's archives that can be fetched now: the link, size, sha256 and expiry. */
export function DownloadList(props: DownloadListProps) {
  return (
    <Show
      when={props.downloads.length > 0}
      fallback={<p class="empty">No downloads. Choose Download on a backup to make one.</p>}
    >
      <ul class="download-list" aria-label={props.label ?? 'Your downloads'}>
        <For each={props.downloads}>
          {(download) => (
            <li class="download">
              <div class="download-info">
                <span class="download-name">{download.fileName}</span>
                <span class="muted">
                  {contents(download)} · {formatBytes(download.sizeBytes)} · expires{' '}
                  <time datetime={download.expiresAt}>{formatDateTime(download.expiresAt)}</time>
                </span>
                <span class="download-sum muted">
                  SHA-256 <code>{download.sha256}</code>
                </span>
              </div>
              <div class="snapshot-actions">
                <a
                  class="button"
                  href={download.url}
                  download={download.fileName}
                  aria-label={`Download ${download.fileName}`}
                >
                  Download
                </a>
                <button
                  type="button"
                  class="button secondary"
                  disabled={props.revoking}
                  aria-label={`Delete the download ${download.fileName}`}
                  onClick={() => props.onRevoke(download)}
                >
                  Delete
                </button>
              </div>
            </li>
          )}
        </For>
      </ul>
    </Show>
  );
}
