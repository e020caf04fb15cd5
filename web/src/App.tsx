import { createMutation, createQuery } from '@urql/solid';
import { createEffect, Match, on, Switch } from 'solid-js';
import { AdminPage } from './admin/AdminPage';
import { useAppClient } from './app-context';
import { ConnectionNotice } from './components/ConnectionNotice';
import { isUnauthenticated } from './graphql/client';
import { SignOutMutation, ViewerQuery } from './graphql/documents';
import { queryErrorMessage } from './graphql/results';
import { LiveJobsProvider, LiveNotices } from './live-jobs';
import { ApiTokensPage } from './pages/ApiTokens';
import { BackupsPage } from './pages/Backups';
import { BrowsePage } from './pages/Browse';
import { NotificationsPage } from './pages/Notifications';
import { SignInPage } from './pages/SignIn';
import { browsedSnapshot, createRoute, ROUTE_HREF, type Route } from './route';

/** One session: who is signed in decides between the sign-in page and the app. */
export function App() {
  const app = useAppClient();
  const [viewer, reexecute] = createQuery({ query: ViewerQuery });
  const route = createRoute();
  const browsed = () => browsedSnapshot(route.hash());
  const [signOutState, signOut] = createMutation(SignOutMutation);

  const me = () => (app.sessionExpired() ? null : viewer.data?.me);
  const startAfresh = () => {
    app.clearSessionExpired();
    app.renew();
  };

  const onSignOut = async () => {
    await signOut({});
    startAfresh();
  };

  // Move focus to the new view's heading, so keyboard and screen-reader users land there.
  createEffect(
    on(route, () => queueMicrotask(() => document.getElementById('page-title')?.focus()), {
      defer: true,
    }),
  );

  const ROUTE_TITLES: Record<Route, string> = {
    backups: 'Backups',
    tokens: 'API tokens',
    notifications: 'Notifications',
    admin: 'Support',
    browse: 'Browse a backup',
  };
  createEffect(() => {
    document.title = me() ? `${ROUTE_TITLES[route()]} · Site backups` : 'Sign in · Site backups';
  });

  const navLink = (to: Exclude<Route, 'browse'>, text: string) => (
    <a href={ROUTE_HREF[to]} aria-current={route() === to ? 'page' : undefined}>
      {text}
    </a>
  );

  return (
    <Switch>
      {/* The support staff's view signs in on its own (a staff session has no customer). */}
      <Match when={route() === 'admin'}>
        <AdminPage />
      </Match>
      <Match when={!viewer.data && viewer.fetching}>
        <p class="loading page-loading" role="status">
          Loading…
        </p>
      </Match>
      <Match when={!viewer.data && viewer.error && !isUnauthenticated(viewer.error)}>
        <main class="signin" id="main">
          <div class="card load-error" role="alert">
            <h1>Backups are not available right now</h1>
            <p>{queryErrorMessage(viewer.error)}</p>
            <button
              type="button"
              class="button primary"
              onClick={() => reexecute({ requestPolicy: 'network-only' })}
            >
              Try again
            </button>
          </div>
        </main>
      </Match>
      <Match when={!me()}>
        <SignInPage
          reason={app.sessionExpired() ? 'Your session has ended. Please sign in again.' : null}
          onSignedIn={startAfresh}
        />
      </Match>
      <Match when={me()}>
        {(customer) => (
          <LiveJobsProvider>
            <button
              type="button"
              class="skip-link"
              onClick={() => document.getElementById('main')?.focus()}
            >
              Skip to content
            </button>
            <header class="topbar">
              <div class="topbar-inner">
                <span class="brand">Site backups</span>
                <nav aria-label="Main">
                  {navLink('backups', 'Backups')}
                  {navLink('tokens', 'API tokens')}
                  {navLink('notifications', 'Notifications')}
                </nav>
                <div class="account">
                  <span class="account-name" title={customer().email}>
                    {customer().name}
                  </span>
                  <button
                    type="button"
                    class="button link"
                    disabled={signOutState.fetching}
                    onClick={onSignOut}
                  >
                    Sign out
                  </button>
                </div>
              </div>
            </header>
            <ConnectionNotice connection={app.connection()} />
            <main id="main" class="content" tabIndex={-1}>
              <LiveNotices />
              <Switch fallback={<BackupsPage />}>
                <Match when={route() === 'tokens'}>
                  <ApiTokensPage />
                </Match>
                <Match when={route() === 'notifications'}>
                  <NotificationsPage />
                </Match>
                <Match when={route() === 'browse' && browsed()}>
                  {(id) => <BrowsePage snapshotId={id()} />}
                </Match>
              </Switch>
            </main>
          </LiveJobsProvider>
        )}
      </Match>
    </Switch>
  );
}
