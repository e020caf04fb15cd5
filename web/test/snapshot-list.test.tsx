import { render, screen, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SnapshotList } from '../src/components/SnapshotList';
import { buildSnapshot } from './factories';

describe('snapshot lists', () => {
  it('shows the empty state when there are no backups', () => {
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[]}
        empty="No manual backups yet. Create one above."
        onRestore={() => {}}
      />
    ));
    expect(screen.getByText('No manual backups yet. Create one above.')).toBeInTheDocument();
    expect(screen.queryByRole('listitem')).not.toBeInTheDocument();
  });

  it('is a list named for what it holds', () => {
    render(() => (
      <SnapshotList
        label="Daily backups"
        snapshots={[buildSnapshot({ source: 'DAILY' }), buildSnapshot({ source: 'DAILY' })]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    const list = screen.getByRole('list', { name: 'Daily backups' });
    expect(within(list).getAllByRole('listitem')).toHaveLength(2);
  });

  it('names each restore button and its menu after the backup it restores', async () => {
    const user = userEvent.setup();
    const when = (iso: string) =>
      new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(
        new Date(iso),
      );
    const manual = buildSnapshot({ createdAt: '2026-11-26T13:05:00Z', label: 'before update' });
    const daily = buildSnapshot({ source: 'DAILY', createdAt: '2026-11-25T02:00:00Z' });
    const undo = buildSnapshot({ source: 'SAFETY', createdAt: '2026-11-24T17:40:00Z' });
    render(() => (
      <SnapshotList
        label="Backups"
        snapshots={[manual, daily, undo]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    const names = [
      `Restore the backup of ${when(manual.createdAt)} (manual, “before update”)`,
      `Restore the backup of ${when(daily.createdAt)} (daily)`,
      `Restore the undo point of ${when(undo.createdAt)}`,
    ];
    const rows = screen.getAllByRole('listitem');
    expect(rows).toHaveLength(3);
    const [first] = rows.map((row, i) => within(row).getByRole('button', { name: names[i] }));
    if (!first) throw new Error('a button expected');
    // the visible word stays part of the name (voice control users say what they see)
    expect(first).toHaveTextContent('Restore');
    await user.click(first);
    expect(screen.getByRole('menu', { name: names[0] })).toBeVisible();
  });

  it('shows date and time in the customer locale, contents, label and size', () => {
    const createdAt = '2026-03-14T09:30:00.000Z';
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[
          buildSnapshot({ createdAt, scope: 'DATABASE', label: 'Before update', sizeBytes: 1536 }),
          buildSnapshot({ source: 'DAILY', scope: 'BOTH', sizeBytes: 3 * 1024 ** 3 }),
        ]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    const [first, second] = screen.getAllByRole('listitem');
    if (!first || !second) throw new Error('two rows expected');
    const expected = new Intl.DateTimeFormat(undefined, {
      dateStyle: 'medium',
      timeStyle: 'short',
    }).format(new Date(createdAt));
    expect(within(first).getByText(expected)).toHaveAttribute('datetime', createdAt);
    expect(first).toHaveTextContent('Database only');
    expect(first).toHaveTextContent('“Before update”');
    expect(first).toHaveTextContent('1.5 KB');
    expect(second).toHaveTextContent('Database & Files (automatic)');
    expect(second).toHaveTextContent('3.0 GB');
  });

  it('offers database, files and full restore for a full backup', async () => {
    const user = userEvent.setup();
    const snapshot = buildSnapshot({ scope: 'BOTH' });
    const onRestore = vi.fn();
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[snapshot]}
        empty="none"
        onRestore={onRestore}
      />
    ));
    const button = screen.getByRole('button', { name: /^Restore the backup of/ });
    expect(button).toHaveAttribute('aria-expanded', 'false');
    await user.click(button);
    expect(button).toHaveAttribute('aria-expanded', 'true');
    const items = within(screen.getByRole('menu')).getAllByRole('menuitem');
    expect(items.map((item) => item.textContent)).toEqual([
      'Database only',
      'Files only',
      'Full restore',
    ]);
    expect(items[0]).toHaveFocus();
    await user.keyboard('{ArrowDown}{ArrowDown}{Enter}');
    expect(onRestore).toHaveBeenCalledWith(snapshot, 'BOTH', button);
    expect(screen.queryByRole('menu')).not.toBeInTheDocument();
  });

  it('offers only the parts a backup contains', async () => {
    const user = userEvent.setup();
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[
          buildSnapshot({ scope: 'DATABASE', createdAt: '2026-03-01T10:00:00Z' }),
          buildSnapshot({ scope: 'FILES', createdAt: '2026-03-02T10:00:00Z' }),
        ]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    const [dbButton, filesButton] = screen.getAllByRole('button', {
      name: /^Restore the backup of/,
    });
    if (!dbButton || !filesButton) throw new Error('two buttons expected');
    await user.click(dbButton);
    expect(screen.getAllByRole('menuitem').map((item) => item.textContent)).toEqual([
      'Database only',
    ]);
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('menu')).not.toBeInTheDocument();
    expect(dbButton).toHaveFocus();

    await user.click(filesButton);
    expect(screen.getAllByRole('menuitem').map((item) => item.textContent)).toEqual(['Files only']);
  });

  it('does not offer restores while a job runs', () => {
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[buildSnapshot()]}
        empty="none"
        restoreDisabled
        onRestore={() => {}}
      />
    ));
    expect(screen.getByRole('button', { name: /^Restore the backup of/ })).toBeDisabled();
  });
});
