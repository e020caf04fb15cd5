import { render, screen, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SnapshotList } from '../src/components/SnapshotList';
import { jobOutcome } from '../src/format';
import { currentJob } from '../src/jobs';
import { buildJob, buildSnapshot } from './factories';

const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
const weekday = (iso: string) =>
  new Intl.DateTimeFormat(undefined, { weekday: 'long' }).format(new Date(iso));

describe('the checks of a backup (restore drills)', () => {
  it('says when a verified backup was checked and how long a full restore takes', () => {
    const verifiedAt = daysAgo(2);
    render(() => (
      <SnapshotList
        label="Daily backups"
        snapshots={[
          buildSnapshot({
            source: 'DAILY',
            verification: { status: 'VERIFIED', verifiedAt, restoreSeconds: 40.4, problem: null },
          }),
        ]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    expect(screen.getByRole('listitem')).toHaveTextContent(
      `Verified ${weekday(verifiedAt)}: a full restore takes about 40 s`,
    );
  });

  it('warns in plain words about a backup that failed its check', () => {
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[
          buildSnapshot({
            verification: {
              status: 'FAILED',
              verifiedAt: daysAgo(1),
              restoreSeconds: null,
              problem: 'The database dump is incomplete.',
            },
          }),
        ]}
        empty="none"
        onRestore={() => {}}
      />
    ));
    const warning = within(screen.getByRole('listitem')).getByRole('note');
    expect(warning).toHaveTextContent('This backup could not be restored when we checked it');
    expect(warning).toHaveTextContent('The database dump is incomplete.');
    expect(screen.queryByText(/Verified/)).not.toBeInTheDocument();
  });

  it('"Verify now" asks for a check of that backup; not while one is under way', async () => {
    const user = userEvent.setup();
    const onVerify = vi.fn();
    const never = buildSnapshot();
    const running = buildSnapshot({
      verification: { status: 'RUNNING', verifiedAt: null, restoreSeconds: null, problem: null },
    });
    render(() => (
      <SnapshotList
        label="Manual backups"
        snapshots={[never, running]}
        empty="none"
        onRestore={() => {}}
        onVerify={onVerify}
      />
    ));
    const [first, second] = screen.getAllByRole('listitem');
    if (!first || !second) throw new Error('two rows expected');
    await user.click(within(first).getByRole('button', { name: 'Verify now' }));
    expect(onVerify).toHaveBeenCalledWith(never);
    expect(second).toHaveTextContent('Check under way');
    expect(within(second).getByRole('button', { name: 'Verify now' })).toBeDisabled();
  });

  it('a check running beside the site is no job in the way: no banner, and its end in words', () => {
    const drill = buildJob({ kind: 'VERIFY', status: 'RUNNING' });
    expect(currentJob(drill, { [drill.id]: drill })).toBeNull();
    const backup = buildJob({ kind: 'BACKUP', status: 'RUNNING' });
    expect(currentJob(null, { [drill.id]: drill, [backup.id]: backup })).toEqual(backup);
    expect(
      jobOutcome({
        kind: 'VERIFY',
        status: 'FAILED',
        errorMessage: 'The database dump is incomplete.',
      }),
    ).toBe('Check failed: The database dump is incomplete.');
  });
});
