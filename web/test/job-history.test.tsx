import { render, screen, within } from '@solidjs/testing-library';
import { describe, expect, it } from 'vitest';
import { JobHistory } from '../src/components/JobHistory';
import { buildJob, buildSnapshot } from './factories';

describe('job history', () => {
  it('says when there is nothing yet', () => {
    render(() => <JobHistory jobs={[]} />);
    expect(screen.getByText('No backups or restores yet.')).toBeVisible();
  });

  it('lists kind, scope, status, duration and failures in plain words', () => {
    render(() => (
      <JobHistory
        jobs={[
          buildJob({
            kind: 'RESTORE',
            scope: 'FILES',
            status: 'FAILED',
            errorMessage: 'There is not enough free disk space to restore this backup.',
            snapshot: buildSnapshot({ createdAt: '2026-03-10T02:00:00Z', source: 'DAILY' }),
            startedAt: '2026-03-14T09:30:00Z',
            finishedAt: '2026-03-14T09:30:42Z',
          }),
          buildJob({
            kind: 'BACKUP',
            scope: 'DATABASE',
            status: 'COMPLETED',
            label: 'Before the update',
            startedAt: '2026-03-14T08:00:00Z',
            finishedAt: '2026-03-14T08:04:10Z',
          }),
        ]}
      />
    ));
    const list = screen.getByRole('list', { name: 'Recent backups and restores' });
    const [restore, backup] = within(list).getAllByRole('listitem');
    expect(restore).toHaveTextContent('Restore · Files only');
    expect(restore).toHaveTextContent('Failed');
    expect(restore).toHaveTextContent('took 42 s');
    expect(restore).toHaveTextContent('from the backup of');
    expect(restore).toHaveTextContent(
      'There is not enough free disk space to restore this backup.',
    );
    expect(backup).toHaveTextContent('Backup · Database only');
    expect(backup).toHaveTextContent('Completed');
    expect(backup).toHaveTextContent('took 4 min 10 s');
    expect(backup).toHaveTextContent('“Before the update”');
  });

  it('says when a restore was finished after an interruption on our side', () => {
    render(() => (
      <JobHistory
        jobs={[
          buildJob({ kind: 'RESTORE', status: 'COMPLETED', phase: 'FINISHED_AFTER_INTERRUPTION' }),
        ]}
      />
    ));
    const [restore] = within(screen.getByRole('list')).getAllByRole('listitem');
    expect(restore).toHaveTextContent('Completed');
    expect(restore).toHaveTextContent(
      'Finished after an interruption on our side: your site was restored.',
    );
  });
});
