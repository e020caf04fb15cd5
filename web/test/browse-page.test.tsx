import { render, screen, waitFor, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../src/graphql/documents';
import { LiveJobsProvider, LiveNotices } from '../src/live-jobs';
import { BrowsePage } from '../src/pages/Browse';
import { buildJob, buildSnapshot } from './factories';
import { createFakeApi } from './fake-api';

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

function setup(indexed: boolean) {
  const snapshot = buildSnapshot({ scope: 'BOTH' });
  const state = { indexed };
  const indexJob = buildJob({ kind: 'INDEX', status: 'RUNNING', phase: 'LISTING', progress: 0.4 });
  const api = createFakeApi({
    BrowseSnapshot: () => ({
      me: { id: '7', snapshot: { ...snapshot, indexed: state.indexed, indexJob: null } },
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
});
