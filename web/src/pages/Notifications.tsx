import { createMutation, createQuery } from '@urql/solid';
import { createSignal, createUniqueId, For, Show } from 'solid-js';
import { CopyField } from '../components/CopyField';
import { formatDateTime } from '../format';
import {
  CreateWebhookMutation,
  DeleteWebhookMutation,
  type NotificationSettings,
  NotificationsQuery,
  RedeliverWebhookMutation,
  UpdateNotificationSettingsMutation,
  type Webhook,
} from '../graphql/documents';
import { failureMessage, queryErrorMessage } from '../graphql/results';

type Switch = keyof NotificationSettings;

const SWITCHES: { key: Switch; label: string }[] = [
  { key: 'restoreCompleted', label: 'A restore of my site finished' },
  { key: 'restoreFailed', label: 'A restore of my site failed' },
  { key: 'dailyBackupFailedTwice', label: 'My daily backup failed twice in a row' },
  { key: 'drillFailed', label: 'A test restore of one of my backups failed' },
];

/** What each event means, in the customer's words (the api's list is the source of names). */
const EVENT_WORDS: Record<string, string> = {
  'job.started': 'a backup, restore or download started',
  'job.completed': 'one finished',
  'job.failed': 'one failed',
  'backup.verified': 'a backup passed its test restore',
  'verification.failed': 'a backup failed its test restore',
  'download.ready': 'a download is ready to fetch',
};

const STATUS_WORDS: Record<string, string> = {
  PENDING: 'Waiting to be retried',
  DELIVERED: 'Delivered',
  FAILED: 'Failed',
};

export function NotificationsPage() {
  const [page, reexecute] = createQuery({ query: NotificationsQuery });
  const refresh = () => reexecute({ requestPolicy: 'network-only' });

  const [, updateSettings] = createMutation(UpdateNotificationSettingsMutation);
  const [settingsNote, setSettingsNote] = createSignal<string | null>(null);
  const onSwitch = async (key: Switch, on: boolean) => {
    setSettingsNote(null);
    const result = await updateSettings({ [key]: on });
    const message = failureMessage(result.error, result.data?.updateNotificationSettings);
    setSettingsNote(message ?? 'Saved.');
    if (!message) refresh();
  };

  const urlId = createUniqueId();
  const [url, setUrl] = createSignal('');
  const [events, setEvents] = createSignal<string[]>(['job.completed', 'job.failed']);
  const [createState, createWebhook] = createMutation(CreateWebhookMutation);
  const [createError, setCreateError] = createSignal<string | null>(null);
  const [created, setCreated] = createSignal<{ url: string; secret: string } | null>(null);
  const onCreate = async (event: SubmitEvent) => {
    event.preventDefault();
    if (!url().trim()) {
      setCreateError('Enter the https address that should receive the events.');
      return;
    }
    setCreateError(null);
    const result = await createWebhook({ url: url().trim(), events: events() });
    const payload = result.data?.createWebhook;
    const message = failureMessage(result.error, payload);
    if (message) {
      setCreateError(message);
      return;
    }
    if (payload?.__typename === 'CreateWebhookSuccess') {
      setCreated({ url: payload.webhook.url, secret: payload.secret });
      setUrl('');
      refresh();
    }
  };

  const [, deleteWebhook] = createMutation(DeleteWebhookMutation);
  const [, redeliver] = createMutation(RedeliverWebhookMutation);
  const [hookNote, setHookNote] = createSignal<string | null>(null);
  const onDelete = async (hook: Webhook) => {
    const result = await deleteWebhook({ id: hook.id });
    setHookNote(
      result.data?.deleteWebhook ? `Webhook ${hook.url} deleted.` : 'It could not be deleted.',
    );
    refresh();
  };
  const onRedeliver = async (deliveryId: string) => {
    const result = await redeliver({ deliveryId });
    setHookNote(
      result.data?.redeliverWebhook
        ? 'Sent again: the log shows the new attempt in a moment.'
        : 'It could not be sent again right now.',
    );
    refresh();
  };

  const me = () => page.data?.me;

  return (
    <>
      <h1 tabIndex={-1} id="page-title">
        Notifications
      </h1>
      <Show
        when={me()}
        fallback={
          <Show
            when={page.error}
            fallback={
              <p class="loading" role="status">
                Loading your notifications…
              </p>
            }
          >
            <div class="load-error" role="alert">
              <p>{queryErrorMessage(page.error)}</p>
              <button type="button" class="button secondary" onClick={refresh}>
                Try again
              </button>
            </div>
          </Show>
        }
      >
        {(customer) => (
          <>
            <section class="card" aria-labelledby="mail-title">
              <h2 id="mail-title">E-mail me when</h2>
              <For each={SWITCHES}>
                {(item) => (
                  <label class="switch">
                    <input
                      type="checkbox"
                      checked={customer().notificationSettings[item.key]}
                      onChange={(event) => onSwitch(item.key, event.currentTarget.checked)}
                    />
                    {item.label}
                  </label>
                )}
              </For>
              <Show when={settingsNote()}>
                <p class="muted" role="status">
                  {settingsNote()}
                </p>
              </Show>
            </section>

            <section class="card" aria-labelledby="new-hook-title">
              <h2 id="new-hook-title">Add a webhook</h2>
              <p class="muted">
                We send a signed POST (Standard Webhooks) to your address for each event you pick.
              </p>
              <form class="token-form" onSubmit={onCreate}>
                <div class="field">
                  <label for={urlId}>Address</label>
                  <input
                    id={urlId}
                    type="url"
                    maxLength={2000}
                    placeholder="https://example.com/hooks/backups"
                    value={url()}
                    onInput={(event) => setUrl(event.currentTarget.value)}
                  />
                </div>
                <fieldset>
                  <legend>Events</legend>
                  <For each={page.data?.webhookEvents ?? []}>
                    {(name) => (
                      <label class="switch">
                        <input
                          type="checkbox"
                          checked={events().includes(name)}
                          onChange={(event) =>
                            setEvents((now) =>
                              event.currentTarget.checked
                                ? [...now, name]
                                : now.filter((e) => e !== name),
                            )
                          }
                        />
                        <code>{name}</code>
                        <Show when={EVENT_WORDS[name]}>
                          {(words) => <span class="muted">: {words()}</span>}
                        </Show>
                      </label>
                    )}
                  </For>
                </fieldset>
                <Show when={createError()}>
                  <p class="form-error" role="alert">
                    {createError()}
                  </p>
                </Show>
                <button type="submit" class="button primary" disabled={createState.fetching}>
                  {createState.fetching ? 'Adding…' : 'Add webhook'}
                </button>
              </form>
              <Show when={created()}>
                {(hook) => (
                  <div class="token-once" role="status">
                    <p>
                      <strong>Webhook for {hook().url} added.</strong> Copy its signing secret now:
                      it is shown only once.
                    </p>
                    <CopyField label="Signing secret" value={hook().secret} />
                    <button type="button" class="button link" onClick={() => setCreated(null)}>
                      I have copied it
                    </button>
                  </div>
                )}
              </Show>
            </section>

            <section class="card" aria-labelledby="hooks-title">
              <h2 id="hooks-title">Your webhooks</h2>
              <Show when={hookNote()}>
                <p class="muted" role="status">
                  {hookNote()}
                </p>
              </Show>
              <Show
                when={(customer().webhooks ?? []).length > 0}
                fallback={<p class="empty">No webhooks yet.</p>}
              >
                <ul class="token-list">
                  <For each={customer().webhooks ?? []}>
                    {(hook) => (
                      <li class="webhook">
                        <div class="token-info">
                          <span class="token-name">{hook.url}</span>
                          <span class="muted">{hook.events.join(', ')}</span>
                          <button
                            type="button"
                            class="button secondary"
                            aria-label={`Delete the webhook ${hook.url}`}
                            onClick={() => onDelete(hook)}
                          >
                            Delete
                          </button>
                        </div>
                        <table class="delivery-log" aria-label={`Deliveries to ${hook.url}`}>
                          <thead>
                            <tr>
                              <th scope="col">Event</th>
                              <th scope="col">When</th>
                              <th scope="col">Status</th>
                              <th scope="col">Attempts</th>
                              <th scope="col">Answer</th>
                              <th scope="col">Next retry</th>
                              <th scope="col">
                                <span class="visually-hidden">Actions</span>
                              </th>
                            </tr>
                          </thead>
                          <tbody>
                            <For
                              each={hook.deliveries.deliveries}
                              fallback={
                                <tr>
                                  <td colSpan={7}>Nothing sent yet.</td>
                                </tr>
                              }
                            >
                              {(delivery) => (
                                <tr>
                                  <td>
                                    <code>{delivery.event}</code>
                                  </td>
                                  <td>{formatDateTime(delivery.createdAt)}</td>
                                  <td>{STATUS_WORDS[delivery.status] ?? delivery.status}</td>
                                  <td>{delivery.attempt}</td>
                                  <td>{delivery.statusCode ?? '–'}</td>
                                  <td>
                                    {delivery.nextRetryAt
                                      ? formatDateTime(delivery.nextRetryAt)
                                      : '–'}
                                  </td>
                                  <td>
                                    <button
                                      type="button"
                                      class="button link"
                                      aria-label={`Send ${delivery.event} again`}
                                      onClick={() => onRedeliver(delivery.id)}
                                    >
                                      Send again
                                    </button>
                                  </td>
                                </tr>
                              )}
                            </For>
                          </tbody>
                        </table>
                      </li>
                    )}
                  </For>
                </ul>
              </Show>
            </section>
          </>
        )}
      </Show>
    </>
  );
}
