import {
  Client,
  type CombinedError,
  cacheExchange,
  fetchExchange,
  mapExchange,
  subscriptionExchange,
} from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import { createSignal } from 'solid-js';

/** 'offline' once a live connection was lost; back to 'online' when it is re-established. */
export type LiveConnection = 'idle' | 'online' | 'offline';

export function isUnauthenticated(error: CombinedError | undefined): boolean {
  return !!error?.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');
}

export function webSocketUrl(location: Location): string {
  const protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${protocol}//${location.host}/graphql`;
}

export interface AppClient {
  /** The urql client of the current session; a new one (with an empty cache) after renew(). */
  client: () => Client;
  /** Starts afresh after signing in or out, so nothing cached from one session shows in another. */
  renew: () => void;
  connection: () => LiveConnection;
  sessionExpired: () => boolean;
  clearSessionExpired: () => void;
  /** Called after the live connection comes back, so views can catch up on what they missed. */
  onReconnect: (listener: () => void) => () => void;
}

export function createAppClient(location: Location = window.location): AppClient {
  const [connection, setConnection] = createSignal<LiveConnection>('idle');
  const [sessionExpired, setSessionExpired] = createSignal(false);
  const reconnectListeners = new Set<() => void>();
  let everConnected = false;

  const ws = createWsClient({
    url: webSocketUrl(location),
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    // 4403: the api refused the socket's credentials (the session ended): retrying cannot help.
    shouldRetry: (event) => (event as { code?: number } | undefined)?.code !== 4403,
    on: {
      connected: () => {
        setConnection('online');
        if (everConnected) {
          for (const listener of reconnectListeners) listener();
        }
        everConnected = true;
      },
      closed: (event) => {
        // A lazy client closes normally (1000) when nothing is subscribed, e.g. after signing
        // out: that is not a lost connection.
        const code = (event as { code?: number } | undefined)?.code;
        if (code === 4403) setSessionExpired(true);
        setConnection(code === 1000 || code === 4403 ? 'idle' : 'offline');
      },
    },
  });

  const newClient = () =>
    new Client({
      url: '/graphql',
      // Always POST: the API expects it, and GET URLs end up in access logs.
      preferGetMethod: false,
      fetchOptions: () => ({
        credentials: 'include',
        headers: { 'x-graphql-yoga-csrf': '1' },
      }),
      exchanges: [
        mapExchange({
          onError(error) {
            if (isUnauthenticated(error)) setSessionExpired(true);
          },
        }),
        cacheExchange,
        fetchExchange,
        subscriptionExchange({
          forwardSubscription(request) {
            const input = { ...request, query: request.query || '' };
            return {
              subscribe(sink) {
                const unsubscribe = ws.subscribe(input, sink);
                return { unsubscribe };
              },
            };
          },
        }),
      ],
    });

  const [client, setClient] = createSignal(newClient());

  return {
    client,
    renew: () => setClient(() => newClient()),
    connection,
    sessionExpired,
    clearSessionExpired: () => setSessionExpired(false),
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
  };
}
