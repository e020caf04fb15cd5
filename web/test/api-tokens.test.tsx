import { render, screen, waitFor, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { ApiToken } from '../src/graphql/documents';
import { ApiTokensPage } from '../src/pages/ApiTokens';
import { createFakeApi } from './fake-api';

function setup(initial: ApiToken[]) {
  let tokens = [...initial];
  const api = createFakeApi({
    ApiTokens: () => ({ me: { id: '7', apiTokens: tokens } }),
    CreateApiToken: (variables) => {
      const apiToken: ApiToken = {
        id: 't2',
        name: String(variables.name),
        prefix: 'cbk_9f3a',
        createdAt: '2026-03-14T10:00:00Z',
        lastUsedAt: null,
      };
      tokens = [...tokens, apiToken];
      return {
        createApiToken: {
          __typename: 'CreateApiTokenSuccess',
          token: 'cbk_9f3a_secret_value',
          apiToken,
        },
      };
    },
    RevokeApiToken: (variables) => {
      tokens = tokens.filter((token) => token.id !== variables.id);
      return { revokeApiToken: true };
    },
  });
  render(() => <ApiTokensPage />, { wrapper: api.Wrapper });
  return api;
}

const existing: ApiToken = {
  id: 't1',
  name: 'Deploy script',
  prefix: 'cbk_1a2b',
  createdAt: '2026-03-01T08:00:00Z',
  lastUsedAt: null,
};

describe('API tokens page', () => {
  it('lists tokens with name, prefix and when they were last used', async () => {
    setup([existing]);
    const row = (await screen.findByText('Deploy script')).closest('li');
    if (!row) throw new Error('row expected');
    expect(row).toHaveTextContent('cbk_1a2b…');
    expect(row).toHaveTextContent('Never used');
  });

  it('shows a new token once, with a Copy button that copies it', async () => {
    const user = userEvent.setup();
    setup([]);
    await screen.findByText('No API tokens yet.');
    await user.type(screen.getByLabelText('Name'), 'Nightly export');
    await user.click(screen.getByRole('button', { name: 'Create token' }));
    const field = await screen.findByLabelText('Your new token');
    expect(field).toHaveValue('cbk_9f3a_secret_value');
    await user.click(screen.getByRole('button', { name: 'Copy' }));
    expect(await navigator.clipboard.readText()).toBe('cbk_9f3a_secret_value');
    expect(screen.getByText('Copied to the clipboard.')).toBeVisible();
    expect(await screen.findByText('Nightly export')).toBeVisible();

    await user.click(screen.getByRole('button', { name: 'I have copied it' }));
    expect(screen.queryByLabelText('Your new token')).not.toBeInTheDocument();
  });

  it('revokes a token only after confirming', async () => {
    const user = userEvent.setup();
    const api = setup([existing]);
    await user.click(await screen.findByRole('button', { name: 'Revoke Deploy script' }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke “Deploy script”?' });
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(api.callsOf('RevokeApiToken')).toHaveLength(0);

    await user.click(screen.getByRole('button', { name: 'Revoke Deploy script' }));
    await user.click(screen.getByRole('button', { name: 'Revoke token' }));
    expect(api.callsOf('RevokeApiToken')[0]?.variables).toEqual({ id: 't1' });
    await waitFor(() => expect(screen.getByText('No API tokens yet.')).toBeVisible());
  });
});
