import { render, screen } from '@solidjs/testing-library';
import { createSignal } from 'solid-js';
import { describe, expect, it } from 'vitest';
import { JobBanner } from '../src/components/JobBanner';
import type { Job } from '../src/graphql/documents';
import { buildJob } from './factories';

describe('job banner', () => {
  it('shows the kind, the phase in words, progress, bytes and time left in a polite live region', () => {
    render(() => <JobBanner job={buildJob()} />);
    const banner = screen.getByRole('status');
    expect(banner).toHaveAttribute('aria-live', 'polite');
    expect(banner).toHaveTextContent('Creating a backup');
    expect(banner).toHaveTextContent('Database & Files');
    expect(banner).toHaveTextContent('Uploading…');
    const progress = screen.getByRole('progressbar', { name: 'Progress' }) as HTMLProgressElement;
    expect(progress.value).toBe(42);
    expect(progress.max).toBe(100);
    expect(banner).toHaveTextContent('42 %');
    expect(banner).toHaveTextContent('42 MB of 100 MB');
    expect(banner).toHaveTextContent('About 1 min 35 s left');
  });

  it('follows the job live as it moves through the restore phases', () => {
    const [job, setJob] = createSignal<Job>(
      buildJob({ kind: 'RESTORE', phase: 'SAFETY_SNAPSHOT', progress: 0.1, etaSeconds: 600 }),
    );
    render(() => <JobBanner job={job()} />);
    const banner = screen.getByRole('status');
    expect(banner).toHaveTextContent('Restoring your site');
    expect(banner).toHaveTextContent('Preparing an undo point');
    expect(banner).toHaveTextContent('About 10 min left');

    setJob(buildJob({ kind: 'RESTORE', phase: 'SWAPPING', progress: 0.95, etaSeconds: 3 }));
    expect(banner).toHaveTextContent('Switching your site over (maintenance mode)');
    expect((screen.getByRole('progressbar') as HTMLProgressElement).value).toBe(95);
    expect(banner).toHaveTextContent('Almost done');
  });

  it('puts unknown phases in words and leaves out what it does not know', () => {
    render(() => (
      <JobBanner
        job={buildJob({
          phase: 'WARMING_THE_CACHE',
          bytesDone: null,
          bytesTotal: null,
          etaSeconds: null,
        })}
      />
    ));
    const banner = screen.getByRole('status');
    expect(banner).toHaveTextContent('Warming the cache…');
    expect(banner).not.toHaveTextContent('left');
    expect(banner).not.toHaveTextContent('MB');
  });

  it('says a queued job is waiting and offers to cancel it', () => {
    let cancelled = false;
    render(() => (
      <JobBanner
        job={buildJob({ status: 'PENDING', phase: null, progress: 0 })}
        onCancel={() => {
          cancelled = true;
        }}
      />
    ));
    expect(screen.getByRole('status')).toHaveTextContent('Waiting to start…');
    screen.getByRole('button', { name: 'Cancel' }).click();
    expect(cancelled).toBe(true);
  });
});
