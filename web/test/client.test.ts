import { createRoot } from 'solid-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAppClient, webSocketUrl } from '../src/graphql/client';
import { ViewerQuery } from '../src/graphql/documents';

afterEach(() => {
  vi.unstubAllGlobals();
});

function jsonResponse(body: unknown) {
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { 'content-type': 'application/json' },
  });
}

describe('api client', () => {
  it('sends the session cookie and the CSRF header with every request to /graphql', async () => {
    const fetch = vi.fn(async () => jsonResponse({ data: { me: null } }));
    vi.stubGlobal('fetch', fetch);
    const app = createRoot(() => createAppClient());
    const result = await app.client().query(ViewerQuery, {}).toPromise();
    expect(result.data?.me).toBeNull();
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/graphql');
    expect(init.method).toBe('POST');
    expect(init.credentials).toBe('include');
    expect(new Headers(init.headers).get('x-graphql-yoga-csrf')).toBe('1');
  });

  it('notices when the session has ended', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        jsonResponse({
          data: null,
          errors: [{ message: 'Sign in first', extensions: { code: 'UNAUTHENTICATED' } }],
        }),
      ),
    );
    const app = createRoot(() => createAppClient());
    expect(app.sessionExpired()).toBe(false);
    await app.client().query(ViewerQuery, {}).toPromise();
    expect(app.sessionExpired()).toBe(true);
    app.clearSessionExpired();
    expect(app.sessionExpired()).toBe(false);
  });

  it('starts a new client with an empty cache for a new session', () => {
    const app = createRoot(() => createAppClient());
    const first = app.client();
    app.renew();
    expect(app.client()).not.toBe(first);
  });

  it('opens the live connection on the same origin, secure when the page is', () => {
    expect(webSocketUrl({ protocol: 'https:', host: 'backups.example' } as Location)).toBe(
      'wss://backups.example/graphql',
    );
    expect(webSocketUrl({ protocol: 'http:', host: '127.0.0.1:5173' } as Location)).toBe(
      'ws://127.0.0.1:5173/graphql',
    );
  });
});
