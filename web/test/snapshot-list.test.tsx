import { render, screen, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SnapshotList } from '../src/components/SnapshotList';
import { buildSnapshot } from './factories';

describe('snapshot lists', () => {
  it('shows the empty state when there are no backups', () => {
    render(() => (
      <SnapshotList
        snapshots={[]}
        empty="No manual backups yet. Create one above."
        onRestore={() => {}}
      />
    ));
    expect(screen.getByText('No manual backups yet. Create one above.')).toBeInTheDocument();
    expect(screen.queryByRole('listitem')).not.toBeInTheDocument();
  });

  it('shows date and time in the customer locale, contents, label and size', () => {
    const createdAt = '2026-03-14T09:30:00.000Z';
    render(() => (
      <SnapshotList
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
    render(() => <SnapshotList snapshots={[snapshot]} empty="none" onRestore={onRestore} />);
    const button = screen.getByRole('button', { name: /^Restore backup from/ });
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
        snapshots={[
          buildSnapshot({ scope: 'DATABASE', createdAt: '2026-03-01T10:00:00Z' }),
          buildSnapshot({ scope: 'FILES', createdAt: '2026-03-02T10:00:00Z' }),
        ]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    const [dbButton, filesButton] = screen.getAllByRole('button', { name: /^Restore backup from/ });
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
        snapshots={[buildSnapshot()]}
        empty="none"
        restoreDisabled
        onRestore={() => {}}
      />
    ));
    expect(screen.getByRole('button', { name: /^Restore backup from/ })).toBeDisabled();
  });
});
