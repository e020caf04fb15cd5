import { createSignal, onCleanup } from 'solid-js';

export type Route = 'backups' | 'tokens' | 'notifications' | 'admin' | 'browse';

export const ROUTE_HREF: Record<Exclude<Route, 'browse'>, string> = {
  backups: '#/',
  tokens: '#/tokens',
  notifications: '#/notifications',
  admin: '#/admin',
};

/** Browsing one backup: #/browse/<snapshot id>. */
export const browseHref = (snapshotId: string) => `#/browse/${snapshotId}`;

export function browsedSnapshot(hash: string): string | null {
  const match = /^#\/?browse\/([0-9a-f]{8,64})$/.exec(hash);
  return match?.[1] ?? null;
}

export function routeFromHash(hash: string): Route {
  if (browsedSnapshot(hash)) return 'browse';
  const name = hash.replace(/^#\/?/, '');
  return name === 'tokens' || name === 'notifications' || name === 'admin' ? name : 'backups';
}

/** The current view, kept in the URL hash so that links, Back and reloads keep working. */
export function createRoute() {
  const [hash, setHash] = createSignal(window.location.hash);
  const onHashChange = () => setHash(window.location.hash);
  window.addEventListener('hashchange', onHashChange);
  onCleanup(() => window.removeEventListener('hashchange', onHashChange));
  const route = () => routeFromHash(hash());
  return Object.assign(route, { hash });
}
