import { render, screen, waitFor, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Entry, Job } from '../src/graphql/documents';
import { LiveJobsProvider, LiveNotices } from '../src/live-jobs';
import { BrowsePage } from '../src/pages/Browse';
import { buildDownload, buildJob, buildSnapshot } from './factories';
import { createFakeApi } from './fake-api';

type Handler = Parameters<typeof createFakeApi>[0][string];

const entry = (path: string, type: Entry['type'], sizeBytes: number | null = null): Entry => ({
  path,
  name: path.slice(path.lastIndexOf('/') + 1),
  type,
  sizeBytes,
  modifiedAt: '2026-03-10T08:00:00.000Z',
});

const FOLDERS: Record<string, Entry[]> = {
  '': [entry('wp-content', 'DIRECTORY'), entry('index.php', 'FILE', 420)],
  'wp-content': [entry('wp-content/uploads', 'DIRECTORY'), entry('wp-content/etc', 'SYMLINK')],
  'wp-content/uploads': [entry('wp-content/uploads/cat.jpg', 'FILE', 2048)],
};

function setup(
  indexed: boolean,
  extra: { activeJob?: Job | null; jobs?: Job[]; handlers?: Record<string, Handler> } = {},
) {
  const snapshot = buildSnapshot({ scope: 'BOTH' });
  const state = { indexed };
  const indexJob = buildJob({ kind: 'INDEX', status: 'RUNNING', phase: 'LISTING', progress: 0.4 });
  const api = createFakeApi({
    BrowseSnapshot: () => ({
      me: {
        id: '7',
        activeJob: extra.activeJob ?? null,
        jobs: extra.jobs ?? [],
        snapshot: { ...snapshot, indexed: state.indexed, indexJob: null },
      },
    }),
    Folder: (v) => ({
      me: {
        id: '7',
        snapshot: {
          id: snapshot.id,
          entries: { entries: FOLDERS[String(v.path)] ?? [], endCursor: null, hasMore: false },
        },
      },
    }),
    SnapshotTables: () => ({
      me: {
        id: '7',
        snapshot: {
          id: snapshot.id,
          tables: [
            { name: 'options', sizeBytes: 100 },
            { name: 'posts', sizeBytes: 5000 },
          ],
        },
      },
    }),
    IndexSnapshot: () => ({
      indexSnapshot: {
        __typename: 'IndexSnapshotSuccess',
        job: indexJob,
        snapshot: { id: snapshot.id, indexed: false },
      },
    }),
    RestoreSnapshot: () => ({
      restoreSnapshot: {
        __typename: 'RestoreSnapshotSuccess',
        job: buildJob({ kind: 'RESTORE', status: 'PENDING', phase: null, progress: 0 }),
      },
    }),
    ...extra.handlers,
  });
  render(
    () => (
      <LiveJobsProvider>
        <LiveNotices />
        <BrowsePage snapshotId={snapshot.id} />
      </LiveJobsProvider>
    ),
    { wrapper: api.Wrapper },
  );
  return { api, snapshot, state, indexJob };
}

describe('browse page', () => {
  it('reads a backup for browsing with live progress, then shows its files', async () => {
    const { api, state, indexJob } = setup(false);
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: 'Read the backup' }));
    const progress = await screen.findByRole('progressbar', { name: 'Reading the backup' });
    expect((progress as HTMLProgressElement).value).toBeCloseTo(0.4);
    expect(screen.getByText('Reading the list of files…')).toBeVisible();

    // The live feed moves the same job on, then ends it: the page shows the files.
    api.pushJob({ ...indexJob, progress: 0.8 });
    await waitFor(() => expect((progress as HTMLProgressElement).value).toBeCloseTo(0.8));
    state.indexed = true;
    api.pushJob({
      ...indexJob,
      status: 'COMPLETED',
      progress: 1,
      finishedAt: new Date().toISOString(),
    });
    expect(await screen.findByRole('button', { name: 'Open folder wp-content' })).toBeVisible();
    expect(screen.getByText('index.php')).toBeVisible();
    expect(api.callsOf('IndexSnapshot')).toHaveLength(1);
  });

  it('opens nested folders by keyboard, selects a file and a table, and restores just those', async () => {
    const { api, snapshot } = setup(true);
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: 'Open folder wp-content' }));
    const uploads = await screen.findByRole('button', { name: 'Open folder wp-content/uploads' });
    expect(screen.getByText('(link)')).toBeVisible();
    uploads.focus();
    await user.keyboard('{Enter}');
    const file = await screen.findByRole('checkbox', { name: 'Select wp-content/uploads/cat.jpg' });
    expect(await screen.findByRole('heading', { name: 'wp-content/uploads' })).toHaveFocus();
    const crumbs = screen.getByRole('navigation', { name: 'Folder path' });
    expect(within(crumbs).getByRole('button', { name: 'uploads' })).toHaveAttribute(
      'aria-current',
      'location',
    );
    expect(screen.getByText('2.0 KB')).toBeVisible();

    expect(screen.getByRole('button', { name: 'Restore selected' })).toBeDisabled();
    await user.click(file);
    await user.click(await screen.findByRole('checkbox', { name: /posts/ }));
    await user.click(screen.getByRole('button', { name: 'Restore selected' }));

    const dialog = await screen.findByRole('dialog');
    const replaced = within(dialog).getByRole('list', { name: 'What will be replaced' });
    expect(
      within(replaced)
        .getAllByRole('listitem')
        .map((li) => li.textContent),
    ).toEqual(['wp-content/uploads/cat.jpg', 'table posts']);
    await user.type(within(dialog).getByRole('textbox'), 'RESTORE');
    await user.click(within(dialog).getByRole('button', { name: 'Restore' }));
    await waitFor(() => expect(api.callsOf('RestoreSnapshot')).toHaveLength(1));
    expect(api.callsOf('RestoreSnapshot')[0]?.variables).toEqual({
      snapshotId: snapshot.id,
      scope: 'BOTH',
      confirmation: 'RESTORE',
      paths: ['wp-content/uploads/cat.jpg'],
      tables: ['posts'],
    });
    expect(window.location.hash).toBe('#/');
  });

  it('downloads only the chosen folder and file, as TAR.GZ, built live on the page', async () => {
    const building = buildJob({ kind: 'DOWNLOAD', scope: 'FILES', status: 'PENDING', phase: null });
    const { api, snapshot } = setup(true, {
      handlers: {
        CreateDownload: () => ({
          createDownload: { __typename: 'CreateDownloadSuccess', job: building },
        }),
      },
    });
    const user = userEvent.setup();
    const download = await screen.findByRole('button', { name: 'Download selected' });
    expect(download).toBeDisabled();
    await user.click(await screen.findByRole('checkbox', { name: 'Select index.php' }));
    await user.click(screen.getByRole('button', { name: 'Open folder wp-content' }));
    await user.click(await screen.findByRole('checkbox', { name: 'Select wp-content/uploads' }));
    const formats = screen.getByRole('group', { name: 'Archive format' });
    await user.click(within(formats).getByRole('radio', { name: 'TAR.GZ' }));
    await user.click(download);
    await waitFor(() => expect(api.callsOf('CreateDownload')).toHaveLength(1));
    expect(api.callsOf('CreateDownload')[0]?.variables).toEqual({
      snapshotId: snapshot.id,
      paths: ['index.php', 'wp-content/uploads'],
      database: false,
      format: 'TAR_GZ',
    });

    // The build's progress here; one download at a time; a restore is not held back by it.
    const banner = await screen.findByRole('status', { name: 'Download being prepared' });
    expect(banner).toHaveTextContent('Preparing your download');
    expect(download).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Restore selected' })).toBeEnabled();
    api.pushJob({ ...building, status: 'RUNNING', phase: 'BUILDING', progress: 0.5 });
    expect(banner).toHaveTextContent('Building your download…');

    const ready = buildDownload({
      format: 'TAR_GZ',
      fileName: 'customer_5-2026-03-14-files.tar.gz',
      paths: ['index.php', 'wp-content/uploads'],
      sha256: 'd1'.repeat(32),
    });
    api.pushJob({ ...building, status: 'COMPLETED', progress: 1, download: ready });
    const list = await screen.findByRole('list', { name: 'Your download of the selection' });
    expect(within(list).getByRole('link', { name: `Download ${ready.fileName}` })).toHaveAttribute(
      'href',
      ready.url,
    );
    expect(list).toHaveTextContent('2 chosen files or folders');
    expect(list).toHaveTextContent('d1'.repeat(32));
    expect(screen.queryByRole('status', { name: 'Download being prepared' })).toBeNull();
    expect(download).toBeEnabled();
  });

  it('adds the database on request, and says why a download was refused', async () => {
    const { api } = setup(true, {
      handlers: {
        CreateDownload: () => ({
          createDownload: {
            __typename: 'InvalidInputError',
            code: 'INVALID_INPUT',
            message: 'This backup has no "index.php".',
          },
        }),
      },
    });
    const user = userEvent.setup();
    const download = await screen.findByRole('button', { name: 'Download selected' });
    await user.click(screen.getByRole('checkbox', { name: /^Add the database/ }));
    expect(download).toBeEnabled();
    await user.click(download);
    await waitFor(() => expect(api.callsOf('CreateDownload')).toHaveLength(1));
    expect(api.callsOf('CreateDownload')[0]?.variables).toMatchObject({
      paths: [],
      database: true,
    });
    expect(await screen.findByRole('alert')).toHaveTextContent('This backup has no "index.php".');
    expect(screen.queryByRole('status', { name: 'Download being prepared' })).toBeNull();
  });

  it('a backup or restore running holds "Restore selected" back, not "Download selected"', async () => {
    const backup = buildJob({ kind: 'BACKUP', status: 'RUNNING' });
    setup(true, { activeJob: backup, jobs: [backup] });
    const user = userEvent.setup();
    await user.click(await screen.findByRole('checkbox', { name: 'Select index.php' }));
    expect(screen.getByRole('button', { name: 'Restore selected' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Download selected' })).toBeEnabled();
  });
});
