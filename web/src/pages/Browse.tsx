import { createMutation, createQuery } from '@urql/solid';
import { createEffect, createSignal, For, on, onCleanup, Show } from 'solid-js';
import { useAppClient } from '../app-context';
import { ArchiveFormatChoice } from '../components/ArchiveFormatChoice';
import { DownloadList } from '../components/DownloadList';
import { JobBanner } from '../components/JobBanner';
import { RestoreDialog, type RestoreRequest } from '../components/RestoreDialog';
import { snapshotName } from '../components/snapshot-name';
import { formatBytes, formatDateTime, isActive, phaseWords } from '../format';
import {
  type ArchiveFormat,
  type BackupScope,
  BrowseSnapshotQuery,
  ChangesQuery,
  CreateDownloadMutation,
  type Download,
  type Entry,
  FolderQuery,
  IndexSnapshotMutation,
  type Job,
  RestoreSnapshotMutation,
  RevokeDownloadMutation,
  SearchQuery,
  TablesQuery,
} from '../graphql/documents';
import type { ResultOf } from '../graphql/graphql';
import { failureMessage, queryErrorMessage } from '../graphql/results';
import { currentDownload, currentJob } from '../jobs';
import { useLiveJobs } from '../live-jobs';
import { ROUTE_HREF } from '../route';

const TYPE_WORDS: Record<Entry['type'], string> = {
  FILE: 'File',
  DIRECTORY: 'Folder',
  SYMLINK: 'Link',
  OTHER: 'Other',
};

type Changes = NonNullable<
  NonNullable<NonNullable<ResultOf<typeof ChangesQuery>['me']>['snapshot']>['changes']
>;

/**
 * One backup's files, folders and tables, from its index (DESIGN.md §10): a folder at a time,
 * a name search, what changed since the previous backup, "Restore selected" for the chosen
 * paths and tables through the same typed-RESTORE dialog as a full restore, and "Download
 * selected" for the chosen paths as a ZIP or TAR.GZ (DESIGN.md §11), built live on this page.
 */
export function BrowsePage(props: { snapshotId: string }) {
  const app = useAppClient();
  const jobs = useLiveJobs();
  const [page, reexecute] = createQuery({
    query: BrowseSnapshotQuery,
    variables: () => ({ id: props.snapshotId }),
    requestPolicy: 'network-only',
  });
  const snapshot = () => page.data?.me?.snapshot ?? null;

  // --- indexing, with its live progress ------------------------------------------------------
  const [indexState, indexSnapshot] = createMutation(IndexSnapshotMutation);
  const [indexError, setIndexError] = createSignal<string | null>(null);
  const [startedJob, setStartedJob] = createSignal<Job | null>(null);
  const indexJob = () => {
    const job = startedJob() ?? snapshot()?.indexJob ?? null;
    return job ? (jobs.live[job.id] ?? job) : null;
  };
  const onIndex = async () => {
    setIndexError(null);
    const result = await indexSnapshot({ snapshotId: props.snapshotId });
    const payload = result.data?.indexSnapshot;
    const message = failureMessage(result.error, payload);
    if (message) return setIndexError(message);
    if (payload?.__typename !== 'IndexSnapshotSuccess') return;
    if (payload.job) {
      jobs.jobChanged(payload.job);
      setStartedJob(payload.job);
    } else reexecute({ requestPolicy: 'network-only' });
  };
  onCleanup(
    jobs.onJobEnded((job) => {
      if (job.id !== indexJob()?.id) return;
      if (job.status !== 'COMPLETED')
        setIndexError(job.errorMessage ?? 'Reading the backup failed.');
      setStartedJob(null);
      reexecute({ requestPolicy: 'network-only' });
    }),
  );

  // --- the folder shown, in pages -------------------------------------------------------------
  const [folder, setFolder] = createSignal('');
  const [entries, setEntries] = createSignal<Entry[]>([]);
  const [cursor, setCursor] = createSignal<string | null>(null);
  const [hasMore, setHasMore] = createSignal(false);
  const [loading, setLoading] = createSignal(false);
  const [loadError, setLoadError] = createSignal<string | null>(null);
  let heading: HTMLHeadingElement | undefined;

  const loadFolder = async (path: string, after: string | null) => {
    setLoading(true);
    setLoadError(null);
    const result = await app
      .client()
      .query(FolderQuery, { id: props.snapshotId, path, after }, { requestPolicy: 'network-only' })
      .toPromise();
    setLoading(false);
    const page = result.data?.me?.snapshot?.entries;
    if (!page)
      return setLoadError(
        result.error?.graphQLErrors[0]?.message ?? queryErrorMessage(result.error),
      );
    setEntries((list) => (after ? [...list, ...page.entries] : page.entries));
    setCursor(page.endCursor ?? null);
    setHasMore(page.hasMore);
  };
  const openFolder = (path: string) => {
    setSearchResults(null);
    setFolder(path);
    void loadFolder(path, null).then(() => heading?.focus());
  };
  createEffect(
    on(
      () => snapshot()?.indexed,
      (indexed) => {
        if (indexed) void loadFolder(folder(), null);
      },
    ),
  );

  // --- search ---------------------------------------------------------------------------------
  const [searchText, setSearchText] = createSignal('');
  const [searchResults, setSearchResults] = createSignal<Entry[] | null>(null);
  const onSearch = async (event: Event) => {
    event.preventDefault();
    const name = searchText().trim();
    if (!name) return setSearchResults(null);
    const result = await app
      .client()
      .query(SearchQuery, { id: props.snapshotId, name }, { requestPolicy: 'network-only' })
      .toPromise();
    setSearchResults(result.data?.me?.snapshot?.search ?? []);
  };

  // --- tables and changes ---------------------------------------------------------------------
  const [tables] = createQuery({
    query: TablesQuery,
    variables: () => ({ id: props.snapshotId }),
    pause: () => !snapshot()?.indexed || snapshot()?.scope === 'FILES',
  });
  const [changes, setChanges] = createSignal<Changes | null | undefined>(undefined);
  const onChanges = async () => {
    const result = await app
      .client()
      .query(ChangesQuery, { id: props.snapshotId }, { requestPolicy: 'network-only' })
      .toPromise();
    setChanges(result.data?.me?.snapshot?.changes ?? null);
  };

  // --- selection and restore ------------------------------------------------------------------
  const [chosenPaths, setChosenPaths] = createSignal<ReadonlySet<string>>(new Set());
  const [chosenTables, setChosenTables] = createSignal<ReadonlySet<string>>(new Set());
  const toggle = (set: ReadonlySet<string>, value: string, on: boolean) => {
    const next = new Set(set);
    if (on) next.add(value);
    else next.delete(value);
    return next;
  };
  // Only a backup or restore blocks a restore; a download being built never does (§10).
  const active = () => currentJob(page.data?.me?.activeJob, jobs.live);
  const [restoreRequest, setRestoreRequest] = createSignal<RestoreRequest | null>(null);
  const [restoreState, restoreSnapshot] = createMutation(RestoreSnapshotMutation);
  const [restoreError, setRestoreError] = createSignal<string | null>(null);
  const selectedScope = (): BackupScope | null => {
    const files = chosenPaths().size > 0;
    const db = chosenTables().size > 0;
    if (files && db) return 'BOTH';
    if (files) return 'FILES';
    return db ? 'DATABASE' : null;
  };
  const onRestoreSelected = (event: MouseEvent) => {
    const current = snapshot();
    const scope = selectedScope();
    if (!current || !scope) return;
    setRestoreError(null);
    setRestoreRequest({
      snapshot: current,
      scope,
      trigger: event.currentTarget as HTMLElement,
      paths: [...chosenPaths()].sort(),
      tables: [...chosenTables()].sort(),
    });
  };
  const onConfirmRestore = async (confirmation: string) => {
    const request = restoreRequest();
    if (!request) return;
    const result = await restoreSnapshot({
      snapshotId: request.snapshot.id,
      scope: request.scope,
      confirmation,
      paths: request.paths?.length ? [...request.paths] : null,
      tables: request.tables?.length ? [...request.tables] : null,
    });
    const payload = result.data?.restoreSnapshot;
    const message = failureMessage(result.error, payload);
    if (message) return setRestoreError(message);
    setRestoreRequest(null);
    if (payload?.__typename === 'RestoreSnapshotSuccess') jobs.jobChanged(payload.job);
    // The restore's progress is on the backups page, with every other job.
    window.location.hash = ROUTE_HREF.backups;
  };

  // --- download of the selection ---------------------------------------------------------------
  const [format, setFormat] = createSignal<ArchiveFormat>('ZIP');
  const [withDatabase, setWithDatabase] = createSignal(false);
  const [downloadState, createDownload] = createMutation(CreateDownloadMutation);
  const [downloadError, setDownloadError] = createSignal<string | null>(null);
  const [downloadJobId, setDownloadJobId] = createSignal<string | null>(null);
  const [readyDownload, setReadyDownload] = createSignal<Download | null>(null);
  // The download being built: the one started here, or one the customer started elsewhere.
  const buildingDownload = () => currentDownload(page.data?.me?.jobs ?? [], jobs.live);
  const downloadable = () =>
    chosenPaths().size > 0 || (withDatabase() && snapshot()?.scope !== 'FILES');
  const onDownloadSelected = async () => {
    const current = snapshot();
    if (!current || !downloadable()) return;
    setDownloadError(null);
    setReadyDownload(null);
    const database = withDatabase() && current.scope !== 'FILES';
    const result = await createDownload({
      snapshotId: current.id,
      // Files chosen: only those; none: the database alone (never the whole site from here).
      paths: [...chosenPaths()].sort(),
      database,
      format: format(),
    });
    const payload = result.data?.createDownload;
    const message = failureMessage(result.error, payload);
    if (message) return setDownloadError(message);
    if (payload?.__typename !== 'CreateDownloadSuccess') return;
    setDownloadJobId(payload.job.id);
    jobs.jobChanged(payload.job);
  };
  onCleanup(
    jobs.onJobEnded((job) => {
      if (job.id !== downloadJobId()) return;
      if (job.status === 'COMPLETED' && job.download) setReadyDownload(job.download);
      else if (job.status !== 'COMPLETED')
        setDownloadError(job.errorMessage ?? 'The download could not be prepared.');
    }),
  );
  const [revokeState, revokeDownload] = createMutation(RevokeDownloadMutation);
  const onRevoke = async (download: Download) => {
    const result = await revokeDownload({ id: download.id });
    const message = failureMessage(result.error, result.data?.revokeDownload);
    if (message) return setDownloadError(message);
    setReadyDownload(null);
  };

  const crumbs = () => {
    const parts = folder() ? folder().split('/') : [];
    return parts.map((name, i) => ({ name, path: parts.slice(0, i + 1).join('/') }));
  };

  const entryRow = (entry: Entry, showPath: boolean) => (
    <tr>
      <td class="pick">
        <input
          type="checkbox"
          aria-label={`Select ${entry.path}`}
          checked={chosenPaths().has(entry.path)}
          onChange={(event) =>
            setChosenPaths((set) => toggle(set, entry.path, event.currentTarget.checked))
          }
        />
      </td>
      <td class="entry-name">
        <Show
          when={entry.type === 'DIRECTORY'}
          fallback={
            <span>
              {showPath ? entry.path : entry.name}
              <Show when={entry.type !== 'FILE'}>
                <span class="muted"> ({TYPE_WORDS[entry.type].toLowerCase()})</span>
              </Show>
            </span>
          }
        >
          <button
            type="button"
            class="button link"
            aria-label={`Open folder ${entry.path}`}
            onClick={() => openFolder(entry.path)}
          >
            <span aria-hidden="true">📁 </span>
            {showPath ? entry.path : entry.name}
          </button>
        </Show>
      </td>
      <td class="entry-size">{entry.type === 'FILE' ? formatBytes(entry.sizeBytes) : ''}</td>
      <td class="entry-date">
        <Show when={entry.modifiedAt}>
          {(at) => <time datetime={at()}>{formatDateTime(at())}</time>}
        </Show>
      </td>
    </tr>
  );

  const entryTable = (list: readonly Entry[], caption: string, showPath: boolean) => (
    <div class="table-scroll">
      <table class="entries">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">
              <span class="visually-hidden">Selected</span>
            </th>
            <th scope="col">Name</th>
            <th scope="col">Size</th>
            <th scope="col">Modified</th>
          </tr>
        </thead>
        <tbody>
          <For each={list}>{(entry) => entryRow(entry, showPath)}</For>
        </tbody>
      </table>
    </div>
  );

  const changeList = (title: string, list: readonly Entry[]) => (
    <Show when={list.length > 0}>
      <h4>
        {title} ({list.length})
      </h4>
      <ul class="change-list">
        <For each={list}>{(entry) => <li>{entry.path}</li>}</For>
      </ul>
    </Show>
  );

  return (
    <>
      <p>
        <a href={ROUTE_HREF.backups}>← All backups</a>
      </p>
      <h1 id="page-title" tabIndex={-1}>
        Browse{' '}
        {snapshot()
          ? snapshotName(snapshot() as NonNullable<ReturnType<typeof snapshot>>)
          : 'a backup'}
      </h1>
      <Show when={page.error}>
        <p class="form-error" role="alert">
          {page.error?.graphQLErrors[0]?.extensions?.code === 'NOT_FOUND'
            ? 'This backup was not found.'
            : queryErrorMessage(page.error)}
        </p>
      </Show>
      <Show when={snapshot()}>
        {(current) => (
          <Show
            when={current().indexed}
            fallback={
              <section class="card" aria-labelledby="index-title">
                <h2 id="index-title">Read this backup for browsing</h2>
                <p>
                  Before you can look inside this backup, we read its list of files and tables. This
                  takes a few seconds to a few minutes and does not touch your site.
                </p>
                <Show
                  when={indexJob() && isActive(indexJob() as Job) ? indexJob() : null}
                  fallback={
                    <button
                      type="button"
                      class="button primary"
                      disabled={indexState.fetching}
                      onClick={onIndex}
                    >
                      Read the backup
                    </button>
                  }
                >
                  {(job) => (
                    <div role="status" aria-live="polite">
                      <p>{phaseWords(job().phase)}…</p>
                      <progress max="1" value={job().progress} aria-label="Reading the backup" />
                      <span class="muted"> {Math.round(job().progress * 100)} %</span>
                    </div>
                  )}
                </Show>
                <Show when={indexError()}>
                  <p class="form-error" role="alert">
                    {indexError()}
                  </p>
                </Show>
              </section>
            }
          >
            <section class="card" aria-labelledby="files-title">
              <div class="card-head">
                <h2 id="files-title">Files</h2>
              </div>
              <Show
                when={current().scope !== 'DATABASE'}
                fallback={<p class="empty">This backup holds only the database.</p>}
              >
                <search>
                  <form class="search" onSubmit={onSearch}>
                    <label class="field">
                      <span>Search file names</span>
                      <input
                        type="search"
                        value={searchText()}
                        onInput={(event) => setSearchText(event.currentTarget.value)}
                      />
                    </label>
                    <button type="submit" class="button secondary">
                      Search
                    </button>
                    <Show when={searchResults()}>
                      <button
                        type="button"
                        class="button link"
                        onClick={() => {
                          setSearchResults(null);
                          setSearchText('');
                        }}
                      >
                        Back to the folder
                      </button>
                    </Show>
                  </form>
                </search>
                <Show
                  when={searchResults()}
                  fallback={
                    <>
                      <nav aria-label="Folder path" class="breadcrumbs">
                        <ol>
                          <li>
                            <button
                              type="button"
                              class="button link"
                              aria-current={folder() === '' ? 'location' : undefined}
                              onClick={() => openFolder('')}
                            >
                              Site folder
                            </button>
                          </li>
                          <For each={crumbs()}>
                            {(crumb) => (
                              <li>
                                <button
                                  type="button"
                                  class="button link"
                                  aria-current={crumb.path === folder() ? 'location' : undefined}
                                  onClick={() => openFolder(crumb.path)}
                                >
                                  {crumb.name}
                                </button>
                              </li>
                            )}
                          </For>
                        </ol>
                      </nav>
                      <h3 ref={heading} tabIndex={-1} class="folder-title">
                        {folder() || 'Site folder'}
                      </h3>
                      <Show when={loadError()}>
                        <p class="form-error" role="alert">
                          {loadError()}
                        </p>
                      </Show>
                      {entryTable(entries(), `Contents of ${folder() || 'the site folder'}`, false)}
                      <Show when={!loading() && entries().length === 0}>
                        <p class="empty">This folder is empty.</p>
                      </Show>
                      <Show when={hasMore()}>
                        <button
                          type="button"
                          class="button secondary"
                          disabled={loading()}
                          onClick={() => void loadFolder(folder(), cursor())}
                        >
                          Show more
                        </button>
                      </Show>
                    </>
                  }
                >
                  {(found) => (
                    <>
                      <h3 class="folder-title" role="status">
                        {found().length} found
                      </h3>
                      {entryTable(found(), 'Search results', true)}
                    </>
                  )}
                </Show>
              </Show>
            </section>

            <Show when={current().scope !== 'FILES'}>
              <section class="card" aria-labelledby="tables-title">
                <h2 id="tables-title">Database tables</h2>
                <fieldset class="tables">
                  <legend class="visually-hidden">Tables to restore</legend>
                  <For each={tables.data?.me?.snapshot?.tables ?? []}>
                    {(table) => (
                      <label class="table-choice">
                        <input
                          type="checkbox"
                          checked={chosenTables().has(table.name)}
                          onChange={(event) =>
                            setChosenTables((set) =>
                              toggle(set, table.name, event.currentTarget.checked),
                            )
                          }
                        />{' '}
                        {table.name} <span class="muted">{formatBytes(table.sizeBytes)}</span>
                      </label>
                    )}
                  </For>
                </fieldset>
              </section>
            </Show>

            <section class="card" aria-labelledby="changes-title">
              <h2 id="changes-title">What changed</h2>
              <button type="button" class="button secondary" onClick={onChanges}>
                What changed since the previous backup
              </button>
              <Show when={changes() === null}>
                <p class="muted" role="status">
                  There is no earlier backup of the same kind that has been read for browsing.
                </p>
              </Show>
              <Show when={changes()}>
                {(c) => (
                  <div role="status">
                    <p>Since the backup of {formatDateTime(c().since.createdAt)}:</p>
                    <Show
                      when={
                        c().added.length +
                          c().removed.length +
                          c().modified.length +
                          c().tablesAdded.length +
                          c().tablesRemoved.length >
                        0
                      }
                      fallback={<p>Nothing changed.</p>}
                    >
                      {changeList('Added', c().added)}
                      {changeList('Removed', c().removed)}
                      {changeList('Modified', c().modified)}
                      <Show when={c().tablesAdded.length > 0}>
                        <p>Tables added: {c().tablesAdded.join(', ')}</p>
                      </Show>
                      <Show when={c().tablesRemoved.length > 0}>
                        <p>Tables removed: {c().tablesRemoved.join(', ')}</p>
                      </Show>
                      <Show when={c().truncated}>
                        <p class="muted">Only the first 1,000 of each are shown.</p>
                      </Show>
                    </Show>
                  </div>
                )}
              </Show>
            </section>

            <section class="card" aria-labelledby="download-title">
              <h2 id="download-title">Download the selection</h2>
              <Show when={current().scope !== 'DATABASE'}>
                <ArchiveFormatChoice value={format()} onChange={setFormat} />
              </Show>
              <Show when={current().scope !== 'FILES'}>
                <label class="radio">
                  <input
                    type="checkbox"
                    checked={withDatabase()}
                    onChange={(event) => setWithDatabase(event.currentTarget.checked)}
                  />
                  <span>
                    Add the database <span class="muted">(all its tables, as one .sql file)</span>
                  </span>
                </label>
              </Show>
              <Show when={buildingDownload()}>{(job) => <JobBanner job={job()} download />}</Show>
              <Show when={downloadError()}>
                <p class="form-error" role="alert">
                  {downloadError()}
                </p>
              </Show>
              <Show when={readyDownload()}>
                {(ready) => (
                  <>
                    <p role="status">
                      Your download is ready. It is also listed under Downloads on the backups page.
                    </p>
                    <DownloadList
                      label="Your download of the selection"
                      downloads={[ready()]}
                      revoking={revokeState.fetching}
                      onRevoke={onRevoke}
                    />
                  </>
                )}
              </Show>
            </section>

            <section class="restore-bar" aria-label="Your selection">
              <span role="status">
                {chosenPaths().size} files or folders, {chosenTables().size} tables selected
              </span>
              <span class="snapshot-actions">
                <button
                  type="button"
                  class="button secondary"
                  disabled={
                    !downloadable() || buildingDownload() !== null || downloadState.fetching
                  }
                  onClick={onDownloadSelected}
                >
                  Download selected
                </button>
                <button
                  type="button"
                  class="button danger"
                  disabled={!selectedScope() || active() !== null}
                  onClick={onRestoreSelected}
                >
                  Restore selected
                </button>
              </span>
            </section>
          </Show>
        )}
      </Show>
      <Show when={restoreRequest()}>
        {(request) => (
          <RestoreDialog
            request={request()}
            busy={restoreState.fetching}
            error={restoreError()}
            onConfirm={onConfirmRestore}
            onClose={() => setRestoreRequest(null)}
          />
        )}
      </Show>
    </>
  );
}
