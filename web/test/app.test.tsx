import { render, screen, waitFor } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../src/App';
import { buildJob, buildSnapshot } from './factories';
import { createFakeApi } from './fake-api';

const signedIn = {
  Viewer: () => ({ me: { id: '7', name: 'Ada Lovelace', email: 'ada@example.test' } }),
  BackupsPage: () => ({
    me: { id: '7', activeJob: null, jobs: [], manual: [], daily: [], safety: [], downloads: [] },
  }),
  ApiTokens: () => ({ me: { id: '7', apiTokens: [] } }),
  SignOut: () => ({ signOut: true }),
};

afterEach(() => {
  window.location.hash = '';
});

describe('app shell', () => {
  it('shows the sign-in page when nobody is signed in', async () => {
    const api = createFakeApi({ Viewer: () => ({ me: null }) });
    render(() => <App />, { wrapper: api.Wrapper });
    expect(await screen.findByRole('heading', { name: 'Sign in to your backups' })).toBeVisible();
    expect(api.callsOf('CustomerJobs')).toHaveLength(0);
  });

  it("shows the customer's name and moves between views without reloading", async () => {
    const user = userEvent.setup();
    const api = createFakeApi(signedIn);
    render(() => <App />, { wrapper: api.Wrapper });
    expect(await screen.findByText('Ada Lovelace')).toBeVisible();
    expect(screen.getByRole('heading', { level: 1, name: 'Backups' })).toBeVisible();
    expect(screen.getByRole('link', { name: 'Backups' })).toHaveAttribute('aria-current', 'page');

    await user.click(screen.getByRole('link', { name: 'API tokens' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'API tokens' })).toBeVisible();
    expect(screen.getByRole('link', { name: 'API tokens' })).toHaveAttribute(
      'aria-current',
      'page',
    );

    await user.click(screen.getByRole('button', { name: 'Sign out' }));
    expect(api.callsOf('SignOut')).toHaveLength(1);
  });

  it('follows jobs on every view: a backup that ends while tokens are shown is announced', async () => {
    const user = userEvent.setup();
    const running = buildJob({ status: 'RUNNING', phase: 'UPLOADING' });
    const catalog = { activeJob: running as typeof running | null, manual: [] as unknown[] };
    const api = createFakeApi({
      ...signedIn,
      BackupsPage: () => ({
        me: { id: '7', jobs: [], daily: [], safety: [], downloads: [], ...catalog },
      }),
    });
    render(() => <App />, { wrapper: api.Wrapper });
    expect(await screen.findByRole('status', { name: 'Current job' })).toHaveTextContent(
      'Uploading',
    );
    await user.click(screen.getByRole('link', { name: 'API tokens' }));
    await screen.findByRole('heading', { level: 1, name: 'API tokens' });

    catalog.activeJob = null;
    catalog.manual = [buildSnapshot({ label: 'Made while away' })];
    api.pushJob({ ...running, status: 'COMPLETED', progress: 1 });
    expect(await screen.findByText('Backup finished.')).toBeVisible();

    await user.click(screen.getByRole('link', { name: 'Backups' }));
    expect(await screen.findByText('“Made while away”')).toBeVisible();
    expect(screen.queryByRole('status', { name: 'Current job' })).not.toBeInTheDocument();
    expect(api.callsOf('CustomerJobs')).toHaveLength(1);
  });

  it('shows the sign-in page when the session ends while the app is open', async () => {
    const api = createFakeApi(signedIn);
    render(() => <App />, { wrapper: api.Wrapper });
    await screen.findByText('Ada Lovelace');
    api.expireSession();
    expect(await screen.findByRole('heading', { name: 'Sign in to your backups' })).toBeVisible();
    expect(screen.getByText('Your session has ended. Please sign in again.')).toBeVisible();
    expect(screen.queryByText('Ada Lovelace')).not.toBeInTheDocument();
  });

  it('names the view in the document title', async () => {
    const user = userEvent.setup();
    const api = createFakeApi(signedIn);
    render(() => <App />, { wrapper: api.Wrapper });
    await screen.findByText('Ada Lovelace');
    expect(document.title).toBe('Backups · Site backups');
    await user.click(screen.getByRole('link', { name: 'API tokens' }));
    await waitFor(() => expect(document.title).toBe('API tokens · Site backups'));
  });

  it('says so, with a retry, when the service cannot be reached', async () => {
    const user = userEvent.setup();
    let down = true;
    const api = createFakeApi({
      ...signedIn,
      Viewer: () => (down ? { error: new TypeError('Failed to fetch') } : signedIn.Viewer()),
    });
    render(() => <App />, { wrapper: api.Wrapper });
    expect(
      await screen.findByRole('heading', { name: 'Backups are not available right now' }),
    ).toBeVisible();
    down = false;
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('Ada Lovelace')).toBeVisible();
  });

  it('shows a small notice while live updates are reconnecting', async () => {
    const api = createFakeApi(signedIn);
    render(() => <App />, { wrapper: api.Wrapper });
    await screen.findByText('Ada Lovelace');
    expect(screen.queryByText(/Reconnecting…/)).not.toBeInTheDocument();
    api.loseConnection();
    expect(await screen.findByText(/Reconnecting…/)).toBeVisible();
    api.reconnect();
    expect(screen.queryByText(/Reconnecting…/)).not.toBeInTheDocument();
  });
});
