import { createMutation, createQuery } from '@urql/solid';
import { createEffect, createSignal, on, onCleanup, Show } from 'solid-js';
import { useAppClient } from '../app-context';
import { ArchiveFormatChoice } from '../components/ArchiveFormatChoice';
import { BackupForm } from '../components/BackupForm';
import { DownloadList } from '../components/DownloadList';
import { DOWNLOAD_BANNER_ID, focusJobBanner, JobBanner } from '../components/JobBanner';
import { JobHistory } from '../components/JobHistory';
import { RestoreDialog, type RestoreRequest } from '../components/RestoreDialog';
import { SnapshotList } from '../components/SnapshotList';
import {
  type ArchiveFormat,
  type BackupScope,
  BackupsPageQuery,
  CancelJobMutation,
  CreateBackupMutation,
  CreateDownloadMutation,
  type Download,
  type Job,
  RestoreSnapshotMutation,
  RevokeDownloadMutation,
  type Snapshot,
  VerifySnapshotMutation,
} from '../graphql/documents';
import { failureMessage, queryErrorMessage } from '../graphql/results';
import { currentDownload, currentJob, mergeJobs } from '../jobs';
import { useLiveJobs } from '../live-jobs';

export function BackupsPage() {
  const app = useAppClient();
  const jobs = useLiveJobs();
  // cache-and-network: coming back from another view shows the last state at once, then fresh.
  const [page, reexecute] = createQuery({
    query: BackupsPageQuery,
    requestPolicy: 'cache-and-network',
  });
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  const live = jobs.live;
  const onJobChanged = jobs.jobChanged;

  // A fresh load is the newest truth: live changes seen before it are in it already.
  createEffect(
    on([() => page.operation, () => page.fetching, () => page.stale], ([, fetching, stale]) => {
      if (!fetching && !stale && page.data) jobs.forgetLive();
    }),
  );
  // The end of a job that this page showed running is news, whenever it comes.
  createEffect(() => {
    const loaded = page.data?.me?.activeJob?.id;
    if (loaded) jobs.sawActive(loaded);
  });

  // When a job ends, its snapshot and the history change: load them again.
  onCleanup(jobs.onJobEnded(refresh));
  // After the live connection comes back, catch up on what happened while it was away.
  onCleanup(app.onReconnect(refresh));

  // A backup or restore blocks another one; a download only reads the repository, so it
  // blocks only another download (DESIGN.md §10) and has a banner of its own.
  const active = () => currentJob(page.data?.me?.activeJob, live);
  const building = () => currentDownload(page.data?.me?.jobs ?? [], live);
  const history = () => mergeJobs(page.data?.me?.jobs ?? [], live);

  const [createState, createBackup] = createMutation(CreateBackupMutation);
  const [backupError, setBackupError] = createSignal<string | null>(null);
  const onCreate = async (scope: BackupScope, label: string | null) => {
    setBackupError(null);
    const result = await createBackup({ scope, label });
    const payload = result.data?.createBackup;
    const message = failureMessage(result.error, payload);
    if (message) {
      setBackupError(message);
      return false;
    }
    if (payload?.__typename === 'CreateBackupSuccess') onJobChanged(payload.job);
    focusJobBanner();
    return true;
  };

  const [restoreRequest, setRestoreRequest] = createSignal<RestoreRequest | null>(null);
  const [restoreState, restoreSnapshot] = createMutation(RestoreSnapshotMutation);
  const [restoreError, setRestoreError] = createSignal<string | null>(null);
  const openRestore = (request: RestoreRequest) => {
    setRestoreError(null);
    setRestoreRequest(request);
  };
  const onConfirmRestore = async (confirmation: string) => {
    const request = restoreRequest();
    if (!request) return;
    setRestoreError(null);
    const result = await restoreSnapshot({
      snapshotId: request.snapshot.id,
      scope: request.scope,
      confirmation,
    });
    const payload = result.data?.restoreSnapshot;
    const message = failureMessage(result.error, payload);
    if (message) {
      setRestoreError(message);
      return;
    }
    setRestoreRequest(null);
    if (payload?.__typename === 'RestoreSnapshotSuccess') onJobChanged(payload.job);
    // The button that opened the dialog is disabled while the job runs: follow the job instead.
    focusJobBanner();
  };

  const [, verifySnapshot] = createMutation(VerifySnapshotMutation);
  const onVerify = async (snapshot: Snapshot) => {
    const result = await verifySnapshot({ snapshotId: snapshot.id });
    const payload = result.data?.verifySnapshot;
    const message = failureMessage(result.error, payload);
    if (message) {
      jobs.notify(message, 'error');
      return;
    }
    jobs.notify('Check started: this backup is being restored beside your site.', 'success');
    refresh();
  };

  const [cancelState, cancelJob] = createMutation(CancelJobMutation);
  const onCancel = async (job: Job) => {
    const result = await cancelJob({ id: job.id });
    const payload = result.data?.cancelJob;
    const message = failureMessage(result.error, payload);
    if (message) jobs.notify(message, 'error');
    else if (payload?.__typename === 'CancelJobSuccess') onJobChanged(payload.job);
  };

  const [downloadState, createDownload] = createMutation(CreateDownloadMutation);
  const [format, setFormat] = createSignal<ArchiveFormat>('ZIP');
  const onDownload = async (snapshot: Snapshot, scope: BackupScope) => {
    // The whole site (paths null) and/or the database; chosen files come from the browser.
    const result = await createDownload({
      snapshotId: snapshot.id,
      paths: scope === 'DATABASE' ? [] : null,
      database: scope !== 'FILES',
      format: format(),
    });
    const payload = result.data?.createDownload;
    const message = failureMessage(result.error, payload);
    if (message) {
      jobs.notify(message, 'error');
      return;
    }
    if (payload?.__typename === 'CreateDownloadSuccess') onJobChanged(payload.job);
    focusJobBanner(DOWNLOAD_BANNER_ID);
  };
  const [revokeState, revokeDownload] = createMutation(RevokeDownloadMutation);
  const onRevoke = async (download: Download) => {
    const result = await revokeDownload({ id: download.id });
    const message = failureMessage(result.error, result.data?.revokeDownload);
    if (message) jobs.notify(message, 'error');
    refresh();
  };

  const jobRunning = () => active() !== null;
  const downloadDisabled = () => building() !== null || downloadState.fetching;
  const me = () => page.data?.me;

  return (
    <>
      <h1 tabIndex={-1} id="page-title">
        Backups
      </h1>
      <Show when={active()}>
        {(job) => (
          <JobBanner
            job={job()}
            cancelling={cancelState.fetching}
            onCancel={() => onCancel(job())}
          />
        )}
      </Show>
      <Show when={building()}>
        {(job) => (
          <JobBanner
            job={job()}
            download
            cancelling={cancelState.fetching}
            onCancel={() => onCancel(job())}
          />
        )}
      </Show>
      <Show
        when={me()}
        fallback={
          <Show
            when={page.error}
            fallback={
              <p class="loading" role="status">
                Loading your backups…
              </p>
            }
          >
            <div class="load-error" role="alert">
              <p>{queryErrorMessage(page.error)}</p>
              <button type="button" class="button secondary" onClick={refresh}>
                Try again
              </button>
            </div>
          </Show>
        }
      >
        {(customer) => (
          <>
            <Show when={page.error}>
              <div class="load-error" role="alert">
                <p>{queryErrorMessage(page.error)} What you see may be out of date.</p>
                <button type="button" class="button secondary" onClick={refresh}>
                  Try again
                </button>
              </div>
            </Show>
            <section class="card" aria-labelledby="create-title">
              <h2 id="create-title">Create a manual backup</h2>
              <BackupForm
                jobRunning={jobRunning()}
                manualCount={customer().manual.length}
                busy={createState.fetching}
                error={backupError()}
                onCreate={onCreate}
              />
            </section>

            <section class="card" aria-labelledby="manual-title">
              <div class="card-head">
                <h2 id="manual-title">Manual backups</h2>
                <span class="muted">Max 5 kept</span>
              </div>
              <SnapshotList
                label="Manual backups"
                snapshots={customer().manual}
                empty="No manual backups yet. Create one above."
                restoreDisabled={jobRunning()}
                onRestore={(snapshot, scope, trigger) => openRestore({ snapshot, scope, trigger })}
                onVerify={onVerify}
                downloadDisabled={downloadDisabled()}
                onDownload={onDownload}
              />
            </section>

            <section class="card" aria-labelledby="daily-title">
              <div class="card-head">
                <h2 id="daily-title">Daily backups</h2>
                <span class="muted">Last 30 days</span>
              </div>
              <SnapshotList
                label="Daily backups"
                snapshots={customer().daily}
                empty="No daily backups yet. They are made automatically every night."
                restoreDisabled={jobRunning()}
                onRestore={(snapshot, scope, trigger) => openRestore({ snapshot, scope, trigger })}
                onVerify={onVerify}
                downloadDisabled={downloadDisabled()}
                onDownload={onDownload}
              />
            </section>

            <section class="card" aria-labelledby="undo-title">
              <div class="card-head">
                <h2 id="undo-title">Undo points</h2>
                <span class="muted">Kept from each restore</span>
              </div>
              <p class="muted">
                Restore the state from before the restore: each undo point holds your site as it was
                when a restore replaced it.
              </p>
              <SnapshotList
                label="Undo points"
                snapshots={customer().safety}
                empty="No undo points yet. One is taken automatically before every restore."
                restoreDisabled={jobRunning()}
                onRestore={(snapshot, scope, trigger) => openRestore({ snapshot, scope, trigger })}
                onVerify={onVerify}
                downloadDisabled={downloadDisabled()}
                onDownload={onDownload}
              />
            </section>

            <section class="card" aria-labelledby="downloads-title">
              <div class="card-head">
                <h2 id="downloads-title">Downloads</h2>
                <span class="muted">Links work for 24 hours</span>
              </div>
              <ArchiveFormatChoice
                legend="Format of new downloads"
                value={format()}
                onChange={setFormat}
              />
              <DownloadList
                downloads={customer().downloads}
                revoking={revokeState.fetching}
                onRevoke={onRevoke}
              />
            </section>

            <section class="card" aria-labelledby="history-title">
              <h2 id="history-title">Recent activity</h2>
              <JobHistory jobs={history()} />
            </section>
          </>
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
