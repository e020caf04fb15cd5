import { createSignal, onCleanup } from 'solid-js';

export type Route = 'backups' | 'tokens' | 'notifications' | 'admin';

export const ROUTE_HREF: Record<Route, string> = {
  backups: '#/',
  tokens: '#/tokens',
  notifications: '#/notifications',
  admin: '#/admin',
};

export function routeFromHash(hash: string): Route {
  const name = hash.replace(/^#\/?/, '');
  return name === 'tokens' || name === 'notifications' || name === 'admin' ? name : 'backups';
}

/** The current view, kept in the URL hash so that links, Back and reloads keep working. */
export function createRoute() {
  const [route, setRoute] = createSignal<Route>(routeFromHash(window.location.hash));
  const onHashChange = () => setRoute(routeFromHash(window.location.hash));
  window.addEventListener('hashchange', onHashChange);
  onCleanup(() => window.removeEventListener('hashchange', onHashChange));
  return route;
}
