import { render, screen, waitFor, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Download, Job, Snapshot } from '../src/graphql/documents';
import { LiveJobsProvider, LiveNotices } from '../src/live-jobs';
import { BackupsPage } from '../src/pages/Backups';
import { buildDownload, buildJob, buildSnapshot } from './factories';
import { createFakeApi } from './fake-api';

interface Catalog {
  activeJob: Job | null;
  jobs: Job[];
  manual: Snapshot[];
  daily: Snapshot[];
  safety: Snapshot[];
  downloads: Download[];
}

/** The page as the app shows it: inside the session's live job feed, with its messages. */
function renderPage(api: ReturnType<typeof createFakeApi>) {
  render(
    () => (
      <LiveJobsProvider>
        <LiveNotices />
        <BackupsPage />
      </LiveJobsProvider>
    ),
    { wrapper: api.Wrapper },
  );
}

function setup(initial: Partial<Catalog> = {}, handlers: Record<string, () => unknown> = {}) {
  const catalog: Catalog = {
    activeJob: null,
    jobs: [],
    manual: [],
    daily: [],
    safety: [],
    downloads: [],
    ...initial,
  };
  const api = createFakeApi({
    BackupsPage: () => ({ me: { id: '7', ...catalog } }),
    ...handlers,
  });
  renderPage(api);
  return { api, catalog };
}

describe('backups page', () => {
  it('shows the empty lists and lets the customer start a backup', async () => {
    setup();
    expect(await screen.findByText('No manual backups yet. Create one above.')).toBeVisible();
    expect(screen.getByText(/No daily backups yet/)).toBeVisible();
    expect(screen.getByText(/No undo points yet/)).toBeVisible();
    expect(screen.getByRole('button', { name: 'Create backup' })).toBeEnabled();
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
  });

  it('follows a job live and catches up when it finishes, without reloading', async () => {
    const { api, catalog } = setup({ manual: [] });
    await screen.findByText('No manual backups yet. Create one above.');
    expect(api.callsOf('CustomerJobs')).toHaveLength(1);

    const job = buildJob({ status: 'RUNNING', phase: 'DUMPING_DATABASE', progress: 0.1 });
    api.pushJob(job);
    const banner = await screen.findByRole('status', { name: 'Current job' });
    expect(banner).toHaveTextContent('Saving your database…');
    expect(screen.getByRole('button', { name: 'Create backup' })).toBeDisabled();

    api.pushJob({ ...job, phase: 'UPLOADING', progress: 0.6 });
    expect(banner).toHaveTextContent('Uploading…');
    expect((within(banner).getByRole('progressbar') as HTMLProgressElement).value).toBe(60);

    const made = buildSnapshot({ label: 'Fresh one' });
    catalog.manual = [made];
    catalog.jobs = [{ ...job, status: 'COMPLETED', progress: 1, snapshot: made }];
    const loadsBefore = api.callsOf('BackupsPage').length;
    api.pushJob({ ...job, status: 'COMPLETED', progress: 1, finishedAt: new Date().toISOString() });

    expect(await screen.findByText('Backup finished.')).toBeVisible();
    // announced politely to screen readers, in the page's message region
    expect(screen.getByRole('status', { name: 'Messages' })).toHaveTextContent('Backup finished.');
    expect(screen.queryByRole('status', { name: 'Current job' })).not.toBeInTheDocument();
    await screen.findByText('“Fresh one”');
    const reloads = api.callsOf('BackupsPage').slice(loadsBefore);
    expect(reloads.length).toBeGreaterThan(0);
    expect(reloads[0]?.requestPolicy).toBe('network-only');
    expect(screen.getByRole('button', { name: 'Create backup' })).toBeEnabled();
  });

  it('tells the customer in plain words why a restore failed', async () => {
    const { api } = setup();
    await screen.findByText('No manual backups yet. Create one above.');
    const job = buildJob({ kind: 'RESTORE', status: 'RUNNING', phase: 'CHECKING_SPACE' });
    api.pushJob(job);
    await screen.findByText('Checking free disk space…');
    api.pushJob({
      ...job,
      status: 'FAILED',
      errorMessage: 'There is not enough free disk space to restore this backup.',
    });
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(
      'Restore failed: There is not enough free disk space to restore this backup. Your site was left as it was before.',
    );
    expect(alert.textContent).not.toContain('×');
  });

  it('restores a snapshot after RESTORE is typed and shows the job that starts', async () => {
    const user = userEvent.setup();
    const snapshot = buildSnapshot({ scope: 'BOTH' });
    const restoring = buildJob({ kind: 'RESTORE', status: 'PENDING', phase: null, progress: 0 });
    const { api } = setup(
      { manual: [snapshot] },
      {
        RestoreSnapshot: () => ({
          restoreSnapshot: { __typename: 'RestoreSnapshotSuccess', job: restoring },
        }),
      },
    );
    const manual = await screen.findByRole('list', { name: 'Manual backups' });
    const restore = within(manual).getByRole('button', { name: /^Restore the backup of/ });
    await user.click(restore);
    await user.click(screen.getByRole('menuitem', { name: 'Files only' }));
    const dialog = screen.getByRole('dialog', { name: 'Files only from this backup?' });
    await user.type(within(dialog).getByLabelText(/Type RESTORE/), 'RESTORE');
    await user.click(within(dialog).getByRole('button', { name: 'Restore' }));

    expect(api.callsOf('RestoreSnapshot')[0]?.variables).toEqual({
      snapshotId: snapshot.id,
      scope: 'FILES',
      confirmation: 'RESTORE',
    });
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(screen.getByRole('status', { name: 'Current job' })).toHaveTextContent(
      'Restoring your site',
    );
    expect(restore).toBeDisabled();
    // The trigger is disabled now, so keyboard focus follows the job.
    expect(screen.getByRole('status', { name: 'Current job' })).toHaveFocus();
  });

  it('keeps the dialog open with the reason when a restore is refused', async () => {
    const user = userEvent.setup();
    setup(
      { daily: [buildSnapshot({ source: 'DAILY', scope: 'DATABASE' })] },
      {
        RestoreSnapshot: () => ({
          restoreSnapshot: {
            __typename: 'JobInProgressError',
            code: 'JOB_IN_PROGRESS',
            message: 'A backup is running. You can restore when it has finished.',
          },
        }),
      },
    );
    await user.click(await screen.findByRole('button', { name: /^Restore the backup of/ }));
    await user.click(screen.getByRole('menuitem', { name: 'Database only' }));
    await user.type(screen.getByLabelText(/Type RESTORE/), 'RESTORE');
    await user.click(screen.getByRole('button', { name: 'Restore' }));
    const dialog = screen.getByRole('dialog');
    expect(await within(dialog).findByRole('alert')).toHaveTextContent(
      'A backup is running. You can restore when it has finished.',
    );
  });

  it('shows the undo point of a finished restore as soon as it is stored', async () => {
    const { api, catalog } = setup();
    await screen.findByText(/No undo points yet/);
    const job = buildJob({ kind: 'RESTORE', status: 'RUNNING', phase: 'SWAPPING', progress: 0.9 });
    api.pushJob(job);
    await screen.findByRole('status', { name: 'Current job' });
    // done: the site is switched over; its undo point is still being stored
    const finished = {
      ...job,
      status: 'COMPLETED',
      progress: 1,
      finishedAt: new Date().toISOString(),
    };
    api.pushJob(finished as Job);
    expect(await screen.findByText('Restore finished — your site is back online.')).toBeVisible();
    const loadsAfterEnd = api.callsOf('BackupsPage').length;
    expect(screen.getByText(/No undo points yet/)).toBeVisible();

    const undo = buildSnapshot({ source: 'SAFETY', scope: 'BOTH' });
    catalog.safety = [undo];
    api.pushJob({ ...finished, safetySnapshot: undo } as Job);
    const undoPoints = await screen.findByRole('region', { name: 'Undo points' });
    await waitFor(() => expect(undoPoints).toHaveTextContent('(undo point)'));
    expect(api.callsOf('BackupsPage').length).toBeGreaterThan(loadsAfterEnd);
    // one message for the restore, not a second one for its undo point
    expect(screen.getAllByText('Restore finished — your site is back online.')).toHaveLength(1);
  });

  it('offers to go back to the state from before a restore', async () => {
    const user = userEvent.setup();
    setup({ safety: [buildSnapshot({ source: 'SAFETY', scope: 'DATABASE' })] });
    const undoPoints = await screen.findByRole('region', { name: 'Undo points' });
    expect(undoPoints).toHaveTextContent('Restore the state from before the restore');
    expect(undoPoints).toHaveTextContent('Database only (undo point)');
    await user.click(
      within(undoPoints).getByRole('button', { name: /^Restore the undo point of/ }),
    );
    await user.click(screen.getByRole('menuitem', { name: 'Database only' }));
    expect(screen.getByRole('dialog', { name: 'Undo the restore?' })).toHaveTextContent(
      'with the undo point from',
    );
  });

  it('catches up with a fresh load when the live connection comes back', async () => {
    const { api, catalog } = setup();
    await screen.findByText('No manual backups yet. Create one above.');
    catalog.manual = [buildSnapshot({ label: 'Made while offline' })];
    const loadsBefore = api.callsOf('BackupsPage').length;
    api.reconnect();
    await screen.findByText('“Made while offline”');
    expect(api.callsOf('BackupsPage').slice(loadsBefore)[0]?.requestPolicy).toBe('network-only');
  });

  it('offers a retry when the service cannot be reached', async () => {
    const user = userEvent.setup();
    let down = true;
    const api = createFakeApi({
      BackupsPage: () =>
        down
          ? { error: new TypeError('Failed to fetch') }
          : {
              data: {
                me: {
                  id: '7',
                  activeJob: null,
                  jobs: [],
                  manual: [],
                  daily: [],
                  safety: [],
                  downloads: [],
                },
              },
            },
    });
    renderPage(api);
    expect(await screen.findByRole('alert')).toHaveTextContent(/couldn't reach the backup service/);
    down = false;
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('No manual backups yet. Create one above.')).toBeVisible();
  });

  it('downloads a backup: the build is followed live, then the link with its size, sha256 and expiry', async () => {
    const user = userEvent.setup();
    const snapshot = buildSnapshot({ scope: 'BOTH' });
    const building = buildJob({ kind: 'DOWNLOAD', scope: 'FILES', status: 'PENDING', phase: null });
    const { api, catalog } = setup(
      { manual: [snapshot] },
      {
        CreateDownload: () => ({
          createDownload: { __typename: 'CreateDownloadSuccess', job: building },
        }),
      },
    );
    const manual = await screen.findByRole('list', { name: 'Manual backups' });
    expect(screen.getByText(/No downloads/)).toBeVisible();
    await user.click(within(manual).getByRole('button', { name: /^Download the backup of/ }));
    expect(screen.getAllByRole('menuitem').map((item) => item.textContent)).toEqual([
      'Database only',
      'Files only',
      'Files and database',
    ]);
    await user.click(screen.getByRole('menuitem', { name: 'Files only' }));
    expect(api.callsOf('CreateDownload')[0]?.variables).toEqual({
      snapshotId: snapshot.id,
      paths: null,
      database: false,
      format: 'ZIP',
    });
    const banner = await screen.findByRole('status', { name: 'Download being prepared' });
    expect(banner).toHaveTextContent('Preparing your download');
    expect(banner).toHaveFocus();
    // Building a download only reads the repository: backups and restores stay open.
    expect(screen.getByRole('button', { name: 'Create backup' })).toBeEnabled();
    expect(within(manual).getByRole('button', { name: /^Restore the backup of/ })).toBeEnabled();
    // One download is built at a time.
    expect(within(manual).getByRole('button', { name: /^Download the backup of/ })).toBeDisabled();

    api.pushJob({ ...building, status: 'RUNNING', phase: 'BUILDING', progress: 0.5 });
    expect(banner).toHaveTextContent('Building your download…');

    const ready = buildDownload({ sizeBytes: 3_145_728, sha256: 'c0'.repeat(32) });
    catalog.downloads = [ready];
    api.pushJob({ ...building, status: 'COMPLETED', progress: 1, download: ready });
    expect(await screen.findByText('Your download is ready (see Downloads).')).toBeVisible();
    const list = await screen.findByRole('list', { name: 'Your downloads' });
    const link = within(list).getByRole('link', { name: `Download ${ready.fileName}` });
    expect(link).toHaveAttribute('href', ready.url);
    expect(link).toHaveAttribute('download', ready.fileName);
    expect(list).toHaveTextContent('3.0 MB');
    expect(list).toHaveTextContent('c0'.repeat(32));
  });

  it('builds the archive in the format chosen, and a backup running does not hold a download back', async () => {
    const user = userEvent.setup();
    const snapshot = buildSnapshot({ scope: 'FILES' });
    const backup = buildJob({ kind: 'BACKUP', status: 'RUNNING', phase: 'UPLOADING' });
    const building = buildJob({ kind: 'DOWNLOAD', scope: 'FILES', status: 'PENDING', phase: null });
    const { api } = setup(
      { manual: [snapshot], activeJob: backup, jobs: [backup] },
      {
        CreateDownload: () => ({
          createDownload: { __typename: 'CreateDownloadSuccess', job: building },
        }),
      },
    );
    const manual = await screen.findByRole('list', { name: 'Manual backups' });
    expect(await screen.findByRole('status', { name: 'Current job' })).toHaveTextContent(
      'Creating a backup',
    );
    expect(within(manual).getByRole('button', { name: /^Restore the backup of/ })).toBeDisabled();
    const formats = screen.getByRole('group', { name: 'Format of new downloads' });
    expect(within(formats).getByRole('radio', { name: 'ZIP' })).toBeChecked();
    await user.click(within(formats).getByRole('radio', { name: 'TAR.GZ' }));

    await user.click(within(manual).getByRole('button', { name: /^Download the backup of/ }));
    await user.click(screen.getByRole('menuitem', { name: 'Files only' }));
    expect(api.callsOf('CreateDownload')[0]?.variables).toEqual({
      snapshotId: snapshot.id,
      paths: null,
      database: false,
      format: 'TAR_GZ',
    });
    // Both are followed, each in its own banner.
    expect(
      await screen.findByRole('status', { name: 'Download being prepared' }),
    ).toHaveTextContent('Preparing your download');
    expect(screen.getByRole('status', { name: 'Current job' })).toHaveTextContent(
      'Creating a backup',
    );
  });

  it('shows a download still being built after a reload, from the jobs the page loaded', async () => {
    const building = buildJob({
      kind: 'DOWNLOAD',
      scope: 'FILES',
      status: 'RUNNING',
      phase: 'BUILDING',
      progress: 0.3,
    });
    setup({ manual: [buildSnapshot({ scope: 'FILES' })], jobs: [building] });
    const banner = await screen.findByRole('status', { name: 'Download being prepared' });
    expect(banner).toHaveTextContent('Building your download…');
    expect(screen.queryByRole('status', { name: 'Current job' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Create backup' })).toBeEnabled();
  });

  it('asks for the database alone with no paths, and deletes a download on request', async () => {
    const user = userEvent.setup();
    const ready = buildDownload({ database: true, paths: [] });
    const { api, catalog } = setup(
      { daily: [buildSnapshot({ source: 'DAILY', scope: 'BOTH' })], downloads: [ready] },
      {
        CreateDownload: () => ({
          createDownload: {
            __typename: 'QuotaExceededError',
            code: 'QUOTA_EXCEEDED',
            message: "You have used today's download allowance.",
          },
        }),
        RevokeDownload: () => ({ revokeDownload: { __typename: 'RevokeDownloadSuccess' } }),
      },
    );
    const daily = await screen.findByRole('list', { name: 'Daily backups' });
    await user.click(within(daily).getByRole('button', { name: /^Download the/ }));
    await user.click(screen.getByRole('menuitem', { name: 'Database only' }));
    expect(api.callsOf('CreateDownload')[0]?.variables).toMatchObject({
      paths: [],
      database: true,
    });
    expect(await screen.findByRole('alert')).toHaveTextContent(
      "You have used today's download allowance.",
    );

    catalog.downloads = [];
    await user.click(screen.getByRole('button', { name: `Delete the download ${ready.fileName}` }));
    expect(api.callsOf('RevokeDownload')[0]?.variables).toEqual({ id: ready.id });
    expect(await screen.findByText(/No downloads/)).toBeVisible();
  });
});
