import { render, screen } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { createSignal } from 'solid-js';
import { describe, expect, it, vi } from 'vitest';
import { BackupForm, LABEL_MAX_LENGTH } from '../src/components/BackupForm';

describe('backup form', () => {
  it('offers database, files or both, with both chosen by default', () => {
    render(() => <BackupForm jobRunning={false} onCreate={() => true} />);
    const group = screen.getByRole('group', { name: 'What to back up' });
    expect(group).toBeInTheDocument();
    expect(screen.getByRole('radio', { name: 'Database & Files' })).toBeChecked();
    expect(screen.getByRole('radio', { name: 'Database only' })).not.toBeChecked();
    expect(screen.getByRole('radio', { name: 'Files only' })).not.toBeChecked();
  });

  it('creates a backup of the chosen parts with the label, then clears the label', async () => {
    const user = userEvent.setup();
    const onCreate = vi.fn(() => true);
    render(() => <BackupForm jobRunning={false} onCreate={onCreate} />);
    await user.click(screen.getByRole('radio', { name: 'Database only' }));
    const label = screen.getByRole('textbox', { name: /Label/ });
    await user.type(label, '  Before the update ');
    await user.click(screen.getByRole('button', { name: 'Create backup' }));
    expect(onCreate).toHaveBeenCalledWith('DATABASE', 'Before the update');
    expect(label).toHaveValue('');
  });

  it('sends no label when none is given', async () => {
    const user = userEvent.setup();
    const onCreate = vi.fn(() => true);
    render(() => <BackupForm jobRunning={false} onCreate={onCreate} />);
    await user.click(screen.getByRole('button', { name: 'Create backup' }));
    expect(onCreate).toHaveBeenCalledWith('BOTH', null);
  });

  it('limits the label to 200 characters and counts them', async () => {
    const user = userEvent.setup();
    render(() => <BackupForm jobRunning={false} onCreate={() => true} />);
    const label = screen.getByRole('textbox', { name: /Label/ });
    expect(label).toHaveAttribute('maxLength', String(LABEL_MAX_LENGTH));
    expect(label).toHaveAccessibleDescription('0 / 200 characters');
    await user.type(label, 'Nightly');
    expect(label).toHaveAccessibleDescription('7 / 200 characters');
    await user.clear(label);
    await user.click(label);
    await user.paste('x'.repeat(250));
    expect((label as HTMLInputElement).value.length).toBeLessThanOrEqual(200);
    expect(screen.getByText(/\/ 200 characters/)).toHaveTextContent('200 / 200 characters');
  });

  it('is disabled while a job runs and enabled again when it ends', async () => {
    const [running, setRunning] = createSignal(true);
    const onCreate = vi.fn(() => true);
    render(() => <BackupForm jobRunning={running()} onCreate={onCreate} />);
    const button = screen.getByRole('button', { name: 'Create backup' });
    expect(button).toBeDisabled();
    expect(screen.getByText(/when the current job has finished/)).toBeInTheDocument();
    setRunning(false);
    expect(button).toBeEnabled();
  });

  it('warns that a sixth manual backup replaces the oldest', () => {
    render(() => <BackupForm jobRunning={false} manualCount={5} onCreate={() => true} />);
    expect(screen.getByText(/a new one replaces the\s+oldest/)).toBeVisible();
  });

  it('shows why a backup was refused', () => {
    render(() => (
      <BackupForm
        jobRunning={false}
        error="Another backup or restore is running."
        onCreate={() => false}
      />
    ));
    expect(screen.getByRole('alert')).toHaveTextContent('Another backup or restore is running.');
  });
});
