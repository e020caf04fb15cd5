import { render, screen } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { createSignal, Show } from 'solid-js';
import { describe, expect, it, vi } from 'vitest';
import { RestoreDialog, type RestoreRequest } from '../src/components/RestoreDialog';
import { buildSnapshot } from './factories';

function renderDialog(overrides: { onConfirm?: (text: string) => void } = {}) {
  const onConfirm = overrides.onConfirm ?? vi.fn();
  const snapshot = buildSnapshot({ label: 'Before the theme update' });
  const [request, setRequest] = createSignal<RestoreRequest | null>(null);
  const result = render(() => (
    <>
      <button
        type="button"
        onClick={(event) => setRequest({ snapshot, scope: 'BOTH', trigger: event.currentTarget })}
      >
        Open restore
      </button>
      <button type="button">Something behind the dialog</button>
      <Show when={request()}>
        {(r) => (
          <RestoreDialog request={r()} onConfirm={onConfirm} onClose={() => setRequest(null)} />
        )}
      </Show>
    </>
  ));
  return { ...result, onConfirm, isOpen: () => request() !== null };
}

async function open() {
  const user = userEvent.setup();
  await user.click(screen.getByRole('button', { name: 'Open restore' }));
  return user;
}

describe('restore dialog', () => {
  it('is a labelled modal dialog that explains maintenance mode, lost changes and the undo point', async () => {
    renderDialog();
    await open();
    const dialog = screen.getByRole('dialog', { name: 'Full restore from this backup?' });
    expect(dialog).toHaveAttribute('aria-modal', 'true');
    expect(dialog).toHaveTextContent(/maintenance mode for a few seconds/);
    expect(dialog).toHaveTextContent(/Changes made after this backup will be lost/);
    expect(dialog).toHaveTextContent(/undo point of your site as it is when we switch over/);
    expect(dialog).toHaveTextContent(/Before the theme update/);
  });

  it('enables Restore only when RESTORE is typed exactly', async () => {
    const { onConfirm } = renderDialog();
    const user = await open();
    const field = screen.getByLabelText(/Type RESTORE to confirm/);
    const restore = screen.getByRole('button', { name: 'Restore' });
    expect(field).toHaveFocus();
    expect(restore).toBeDisabled();

    await user.type(field, 'restore');
    expect(restore).toBeDisabled();

    await user.clear(field);
    await user.type(field, 'RESTORE ');
    expect(restore).toBeDisabled();

    await user.clear(field);
    await user.type(field, 'RESTOR');
    expect(restore).toBeDisabled();

    await user.type(field, 'E');
    expect(restore).toBeEnabled();
    await user.click(restore);
    expect(onConfirm).toHaveBeenCalledWith('RESTORE');
  });

  it('does not submit on Enter before RESTORE is typed', async () => {
    const { onConfirm } = renderDialog();
    const user = await open();
    await user.type(screen.getByLabelText(/Type RESTORE to confirm/), 'restore{Enter}');
    expect(onConfirm).not.toHaveBeenCalled();
  });

  it('closes on Escape and gives focus back to the button that opened it', async () => {
    const { isOpen } = renderDialog();
    const user = await open();
    expect(screen.getByRole('dialog')).toBeInTheDocument();
    await user.keyboard('{Escape}');
    expect(isOpen()).toBe(false);
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Open restore' })).toHaveFocus();
  });

  it('closes with Cancel and gives focus back', async () => {
    renderDialog();
    const user = await open();
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Open restore' })).toHaveFocus();
  });

  it('keeps focus inside the dialog when tabbing in both directions', async () => {
    renderDialog();
    const user = await open();
    const field = screen.getByLabelText(/Type RESTORE to confirm/);
    const cancel = screen.getByRole('button', { name: 'Cancel' });
    expect(field).toHaveFocus();

    // Restore is disabled, so Cancel is the last focusable element: Tab wraps to the field.
    await user.tab();
    expect(cancel).toHaveFocus();
    await user.tab();
    expect(field).toHaveFocus();
    await user.tab({ shift: true });
    expect(cancel).toHaveFocus();

    await user.type(field, 'RESTORE');
    field.focus();
    await user.tab();
    await user.tab();
    expect(screen.getByRole('button', { name: 'Restore' })).toHaveFocus();
    await user.tab();
    expect(field).toHaveFocus();
    expect(screen.getByRole('button', { name: 'Something behind the dialog' })).not.toHaveFocus();
  });

  it('makes the page behind it inert while open, and live again after', async () => {
    renderDialog();
    const user = await open();
    const behind = screen.getByRole('button', { name: 'Something behind the dialog' });
    expect(behind.closest('[inert]')).not.toBeNull();
    await user.keyboard('{Escape}');
    expect(behind.closest('[inert]')).toBeNull();
  });

  it('shows why a restore was refused', () => {
    const snapshot = buildSnapshot();
    render(() => (
      <RestoreDialog
        request={{ snapshot, scope: 'DATABASE' }}
        error="Another backup or restore is running. Wait for it to finish."
        onConfirm={() => {}}
        onClose={() => {}}
      />
    ));
    expect(screen.getByRole('alert')).toHaveTextContent('Another backup or restore is running');
    expect(screen.getByRole('dialog', { name: 'Database only from this backup?' })).toBeVisible();
  });
});
