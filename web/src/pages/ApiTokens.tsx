import { createMutation, createQuery } from '@urql/solid';
import { createSignal, createUniqueId, For, Show } from 'solid-js';
import { CopyField } from '../components/CopyField';
import { Dialog } from '../components/Dialog';
import { formatDateTime } from '../format';
import {
  type ApiToken,
  ApiTokensQuery,
  CreateApiTokenMutation,
  RevokeApiTokenMutation,
} from '../graphql/documents';
import { failureMessage, queryErrorMessage } from '../graphql/results';

const NAME_MAX_LENGTH = 100;

export function ApiTokensPage() {
  const [tokens, reexecute] = createQuery({ query: ApiTokensQuery });
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  const nameId = createUniqueId();

  const [name, setName] = createSignal('');
  const [createState, createApiToken] = createMutation(CreateApiTokenMutation);
  const [createError, setCreateError] = createSignal<string | null>(null);
  const [created, setCreated] = createSignal<{ name: string; token: string } | null>(null);

  const onCreate = async (event: SubmitEvent) => {
    event.preventDefault();
    const tokenName = name().trim();
    if (!tokenName) {
      setCreateError('Give the token a name, so you can tell it apart later.');
      return;
    }
    setCreateError(null);
    const result = await createApiToken({ name: tokenName });
    const payload = result.data?.createApiToken;
    const message = failureMessage(result.error, payload);
    if (message) {
      setCreateError(message);
      return;
    }
    if (payload?.__typename === 'CreateApiTokenSuccess') {
      setCreated({ name: payload.apiToken.name, token: payload.token });
      setName('');
      refresh();
    }
  };

  const [revoking, setRevoking] = createSignal<{ token: ApiToken; trigger: HTMLElement } | null>(
    null,
  );
  const [revokeState, revokeApiToken] = createMutation(RevokeApiTokenMutation);
  const [revokeError, setRevokeError] = createSignal<string | null>(null);
  const onRevoke = async () => {
    const target = revoking();
    if (!target) return;
    const result = await revokeApiToken({ id: target.token.id });
    const message = failureMessage(result.error, result.data ? { __typename: 'Boolean' } : null);
    if (message || result.data?.revokeApiToken === false) {
      setRevokeError(message ?? 'This token could not be revoked. It may be gone already.');
      return;
    }
    setRevoking(null);
    refresh();
  };

  const list = () => tokens.data?.me?.apiTokens ?? [];

  return (
    <>
      <h1 tabIndex={-1} id="page-title">
        API tokens
      </h1>
      <p class="muted">
        Tokens let your own scripts and services start backups and restores through the API. Send
        one as <code>Authorization: Bearer &lt;token&gt;</code>.
      </p>

      <section class="card" aria-labelledby="new-token-title">
        <h2 id="new-token-title">Create a token</h2>
        <form class="token-form" onSubmit={onCreate}>
          <div class="field">
            <label for={nameId}>Name</label>
            <input
              id={nameId}
              type="text"
              maxLength={NAME_MAX_LENGTH}
              placeholder="e.g. Deploy script"
              value={name()}
              onInput={(event) => setName(event.currentTarget.value)}
            />
          </div>
          <Show when={createError()}>
            <p class="form-error" role="alert">
              {createError()}
            </p>
          </Show>
          <button type="submit" class="button primary" disabled={createState.fetching}>
            {createState.fetching ? 'Creating…' : 'Create token'}
          </button>
        </form>
        <Show when={created()}>
          {(token) => (
            <div class="token-once" role="status">
              <p>
                <strong>Token “{token().name}” created.</strong> Copy it now: it is shown only once.
              </p>
              <CopyField label="Your new token" value={token().token} />
              <button type="button" class="button link" onClick={() => setCreated(null)}>
                I have copied it
              </button>
            </div>
          )}
        </Show>
      </section>

      <section class="card" aria-labelledby="tokens-title">
        <h2 id="tokens-title">Your tokens</h2>
        <Show
          when={tokens.data?.me}
          fallback={
            <Show
              when={tokens.error}
              fallback={
                <p class="loading" role="status">
                  Loading your tokens…
                </p>
              }
            >
              <div class="load-error" role="alert">
                <p>{queryErrorMessage(tokens.error)}</p>
                <button type="button" class="button secondary" onClick={refresh}>
                  Try again
                </button>
              </div>
            </Show>
          }
        >
          <Show when={list().length > 0} fallback={<p class="empty">No API tokens yet.</p>}>
            <ul class="token-list">
              <For each={list()}>
                {(token) => (
                  <li class="token">
                    <div class="token-info">
                      <span class="token-name">{token.name}</span>
                      <code class="token-prefix">{token.prefix}…</code>
                      <span class="muted">Created {formatDateTime(token.createdAt)}</span>
                      <span class="muted">
                        {token.lastUsedAt
                          ? `Last used ${formatDateTime(token.lastUsedAt)}`
                          : 'Never used'}
                      </span>
                    </div>
                    <button
                      type="button"
                      class="button secondary"
                      aria-label={`Revoke ${token.name}`}
                      onClick={(event) => {
                        setRevokeError(null);
                        setRevoking({ token, trigger: event.currentTarget });
                      }}
                    >
                      Revoke
                    </button>
                  </li>
                )}
              </For>
            </ul>
          </Show>
        </Show>
      </section>

      <Show when={revoking()}>
        {(target) => (
          <Dialog
            title={`Revoke “${target().token.name}”?`}
            onClose={() => setRevoking(null)}
            returnFocusTo={target().trigger}
          >
            <p>
              Anything that uses this token stops working at once. This cannot be undone; you can
              create a new token at any time.
            </p>
            <Show when={revokeError()}>
              <p class="form-error" role="alert">
                {revokeError()}
              </p>
            </Show>
            <div class="dialog-actions">
              <button type="button" class="button secondary" onClick={() => setRevoking(null)}>
                Cancel
              </button>
              <button
                type="button"
                class="button danger"
                disabled={revokeState.fetching}
                onClick={onRevoke}
              >
                {revokeState.fetching ? 'Revoking…' : 'Revoke token'}
              </button>
            </div>
          </Dialog>
        )}
      </Show>
    </>
  );
}
