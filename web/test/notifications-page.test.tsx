import { render, screen, within } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { NotificationSettings, Webhook } from '../src/graphql/documents';
import { NotificationsPage } from '../src/pages/Notifications';
import { createFakeApi } from './fake-api';

const EVENTS = [
  'job.started',
  'job.completed',
  'job.failed',
  'backup.verified',
  'verification.failed',
  'download.ready',
];

function setup(initialHooks: Webhook[]) {
  let settings: NotificationSettings = {
    restoreCompleted: true,
    restoreFailed: true,
    dailyBackupFailedTwice: true,
    drillFailed: true,
  };
  let hooks = [...initialHooks];
  const api = createFakeApi({
    Notifications: () => ({
      webhookEvents: EVENTS,
      me: { id: '7', notificationSettings: settings, webhooks: hooks },
    }),
    UpdateNotificationSettings: (variables) => {
      settings = { ...settings, ...(variables as Partial<NotificationSettings>) };
      return { updateNotificationSettings: { __typename: 'NotificationSettings', ...settings } };
    },
    CreateWebhook: (variables) => {
      if (String(variables.url).includes('127.0.0.1')) {
        return {
          createWebhook: {
            __typename: 'InvalidInputError',
            code: 'INVALID_INPUT',
            message: 'The address 127.0.0.1 is not reachable for webhooks.',
          },
        };
      }
      const hook: Webhook = {
        id: 'h2',
        url: String(variables.url),
        events: variables.events as string[],
        createdAt: '2026-03-14T10:00:00Z',
        deliveries: { hasMore: false, deliveries: [] },
      };
      hooks = [...hooks, hook];
      return {
        createWebhook: {
          __typename: 'CreateWebhookSuccess',
          secret: 'whsec_c2VjcmV0IHNob3duIG9uY2U=',
          webhook: { id: hook.id, url: hook.url },
        },
      };
    },
    DeleteWebhook: (variables) => {
      hooks = hooks.filter((h) => h.id !== variables.id);
      return { deleteWebhook: true };
    },
    RedeliverWebhook: () => ({ redeliverWebhook: true }),
  });
  render(() => <NotificationsPage />, { wrapper: api.Wrapper });
  return api;
}

const billing: Webhook = {
  id: 'h1',
  url: 'https://billing.example.com/hooks',
  events: ['job.completed', 'job.failed'],
  createdAt: '2026-03-01T08:00:00Z',
  deliveries: {
    hasMore: false,
    deliveries: [
      {
        id: 'd9',
        event: 'job.failed',
        status: 'PENDING',
        attempt: 3,
        statusCode: 503,
        createdAt: '2026-03-02T02:00:00Z',
        nextRetryAt: '2026-03-02T02:30:00Z',
      },
    ],
  },
};

const drills: Webhook = {
  id: 'h3',
  url: 'https://status.example.com/in',
  events: ['backup.verified', 'verification.failed', 'download.ready'],
  createdAt: '2026-03-05T08:00:00Z',
  deliveries: {
    hasMore: false,
    deliveries: [
      {
        id: 'd20',
        event: 'verification.failed',
        status: 'DELIVERED',
        attempt: 1,
        statusCode: 200,
        createdAt: '2026-03-06T03:10:00Z',
        nextRetryAt: null,
      },
      {
        id: 'd21',
        event: 'download.ready',
        status: 'FAILED',
        attempt: 11,
        statusCode: 500,
        createdAt: '2026-03-06T09:00:00Z',
        nextRetryAt: null,
      },
    ],
  },
};

describe('Notifications page', () => {
  it('switches an e-mail off with one click and says it is saved', async () => {
    const user = userEvent.setup();
    const api = setup([]);
    const box = await screen.findByRole('checkbox', { name: 'A restore of my site finished' });
    expect(box).toBeChecked();
    await user.click(box);
    expect(api.callsOf('UpdateNotificationSettings')[0]?.variables).toEqual({
      restoreCompleted: false,
    });
    expect(await screen.findByText('Saved.')).toBeVisible();
    expect(
      screen.getByRole('checkbox', { name: 'A restore of my site finished' }),
    ).not.toBeChecked();
    expect(screen.getByRole('checkbox', { name: 'A restore of my site failed' })).toBeChecked();
  });

  it('shows the delivery log of a webhook and sends a delivery again', async () => {
    const user = userEvent.setup();
    const api = setup([billing]);
    const log = await screen.findByRole('table', {
      name: 'Deliveries to https://billing.example.com/hooks',
    });
    const [, row] = within(log).getAllByRole('row');
    if (!row) throw new Error('a delivery row expected');
    expect(row).toHaveTextContent('job.failed');
    expect(row).toHaveTextContent('Waiting to be retried');
    expect(row).toHaveTextContent('503');
    expect(within(row).getAllByRole('cell')[3]).toHaveTextContent('3');
    await user.click(within(row).getByRole('button', { name: 'Send job.failed again' }));
    expect(api.callsOf('RedeliverWebhook')[0]?.variables).toEqual({ deliveryId: 'd9' });
    expect(await screen.findByText(/Sent again/)).toBeVisible();
  });

  it('adds a webhook with the chosen events and shows its secret once; a refused address is explained', async () => {
    const user = userEvent.setup();
    const api = setup([]);
    await screen.findByText('No webhooks yet.');
    await user.type(screen.getByLabelText('Address'), 'https://127.0.0.1/hook');
    await user.click(screen.getByRole('button', { name: 'Add webhook' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'The address 127.0.0.1 is not reachable for webhooks.',
    );

    await user.clear(screen.getByLabelText('Address'));
    await user.type(screen.getByLabelText('Address'), 'https://crm.example.com/in');
    await user.click(screen.getByRole('checkbox', { name: /^job\.failed:/ }));
    await user.click(screen.getByRole('checkbox', { name: /^job\.started:/ }));
    await user.click(screen.getByRole('button', { name: 'Add webhook' }));
    expect(api.callsOf('CreateWebhook')[1]?.variables).toEqual({
      url: 'https://crm.example.com/in',
      events: ['job.completed', 'job.started'],
    });
    expect(await screen.findByLabelText('Signing secret')).toHaveValue(
      'whsec_c2VjcmV0IHNob3duIG9uY2U=',
    );
    expect(
      await screen.findByRole('table', { name: 'Deliveries to https://crm.example.com/in' }),
    ).toHaveTextContent('Nothing sent yet.');
    await user.click(screen.getByRole('button', { name: 'I have copied it' }));
    expect(screen.queryByLabelText('Signing secret')).not.toBeInTheDocument();

    await user.click(
      screen.getByRole('button', { name: 'Delete the webhook https://crm.example.com/in' }),
    );
    expect(await screen.findByText('No webhooks yet.')).toBeVisible();
  });

  it('offers the drill and download events in plain words and subscribes a hook to them', async () => {
    const user = userEvent.setup();
    const api = setup([]);
    await screen.findByText('No webhooks yet.');
    const verified = screen.getByRole('checkbox', {
      name: 'backup.verified: a backup passed its test restore',
    });
    const failed = screen.getByRole('checkbox', {
      name: 'verification.failed: a backup failed its test restore',
    });
    const ready = screen.getByRole('checkbox', {
      name: 'download.ready: a download is ready to fetch',
    });
    for (const box of [verified, failed, ready]) expect(box).not.toBeChecked();
    await user.type(screen.getByLabelText('Address'), 'https://status.example.com/in');
    // Only the new events: the default two are taken off.
    await user.click(screen.getByRole('checkbox', { name: /^job\.completed:/ }));
    await user.click(screen.getByRole('checkbox', { name: /^job\.failed:/ }));
    for (const box of [verified, failed, ready]) await user.click(box);
    await user.click(screen.getByRole('button', { name: 'Add webhook' }));
    expect(api.callsOf('CreateWebhook')[0]?.variables).toEqual({
      url: 'https://status.example.com/in',
      events: ['backup.verified', 'verification.failed', 'download.ready'],
    });
    expect(
      await screen.findByText('backup.verified, verification.failed, download.ready'),
    ).toBeVisible();
  });

  it('shows deliveries of a failed drill and of a download, and sends the failed one again', async () => {
    const user = userEvent.setup();
    const api = setup([drills]);
    const log = await screen.findByRole('table', {
      name: 'Deliveries to https://status.example.com/in',
    });
    const [, drill, download] = within(log).getAllByRole('row');
    if (!drill || !download) throw new Error('two delivery rows expected');
    expect(drill).toHaveTextContent('verification.failed');
    expect(drill).toHaveTextContent('Delivered');
    expect(within(drill).getAllByRole('cell')[4]).toHaveTextContent('200');
    expect(download).toHaveTextContent('download.ready');
    expect(download).toHaveTextContent('Failed');
    expect(within(download).getAllByRole('cell')[3]).toHaveTextContent('11');
    expect(within(download).getAllByRole('cell')[5]).toHaveTextContent('–');
    await user.click(within(download).getByRole('button', { name: 'Send download.ready again' }));
    expect(api.callsOf('RedeliverWebhook')[0]?.variables).toEqual({ deliveryId: 'd21' });
  });

  it('switches off the e-mail about a failed test restore, and only that one', async () => {
    const user = userEvent.setup();
    const api = setup([]);
    const box = await screen.findByRole('checkbox', {
      name: 'A test restore of one of my backups failed',
    });
    expect(box).toBeChecked();
    await user.click(box);
    expect(api.callsOf('UpdateNotificationSettings')[0]?.variables).toEqual({
      drillFailed: false,
    });
    expect(await screen.findByText('Saved.')).toBeVisible();
    expect(
      screen.getByRole('checkbox', { name: 'A test restore of one of my backups failed' }),
    ).not.toBeChecked();
    for (const other of [
      'A restore of my site finished',
      'A restore of my site failed',
      'My daily backup failed twice in a row',
    ]) {
      expect(screen.getByRole('checkbox', { name: other })).toBeChecked();
    }
  });
});
