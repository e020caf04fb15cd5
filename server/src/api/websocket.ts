import type { IncomingMessage, Server } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { type WebSocket, WebSocketServer } from 'ws';
import { readBearer, readCookie } from '../auth/credentials.js';
import { sessionCookieName } from '../auth/sessions.js';
import { credentialKey, type Viewer, viewerFromBearer, viewerFromSession } from '../auth/viewer.js';
import type { Config } from '../config/config.js';
import type { ApiServices } from '../graphql/context.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { clientAddress } from './client-address.js';
import { KeyedLimit } from './keyed-limit.js';
import { type ApiMetrics, rootField } from './metrics.js';
import { SharedStream } from './shared-subscription.js';
import { SocketSubscription } from './socket-subscription.js';
import { type ApiYoga, GRAPHQL_PATH } from './yoga.js';

// The CommonJS graphql that Pothos built the schema with (see graphql/graphql-runtime.ts).
const { getOperationAST }: typeof import('graphql') = createRequire(import.meta.url)('graphql');

/** A socket that connection_init authenticated, and the subscriptions holding its places. */
interface SocketState {
  viewer: Viewer;
  /** operation id -> its root field (metrics) */
  subscriptions: Map<string, string>;
}

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
  /** What graphql-ws is handed for a subscription's result (see SocketSubscription). */
  direct: (result: unknown) => unknown;
}

/** How long a socket may stay open without connection_init (graphql-ws then closes it, 4408). */
const CONNECTION_INIT_WAIT_MS = 3000;

/**
 * The viewer of a new socket: the bearer token of connection_init, or the session cookie of
 * the upgrade request when it comes from our own origin (cross-site WebSocket hijacking).
 * null (no credentials, or none that hold) closes the socket.
 */
async function socketViewer(
  services: ApiServices,
  params: Record<string, unknown> | undefined,
  request: IncomingMessage,
): Promise<Viewer | null> {
  const authorization = params?.authorization;
  if (typeof authorization === 'string' && authorization !== '') {
    const token = readBearer(authorization);
    return token ? viewerFromBearer(services.orm.em, token) : null;
  }
  const session = readCookie(
    request.headers.cookie,
    sessionCookieName(services.config.BACKUPS_PUBLIC_URL),
  );
  if (!session) return null;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== new URL(services.config.BACKUPS_PUBLIC_URL).origin) {
    return null;
  }
  return viewerFromSession(services.orm.em, session);
}

function tooManySubscriptions(limit: number): GraphQLError {
  return new GraphQLError(
    `At most ${limit} subscriptions may be live at once for one session or API token: end one before starting another.`,
    { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } },
  );
}

/** Answers an upgrade with an HTTP error instead of a WebSocket (as ws does for bad ones). */
function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

/**
 * graphql-ws on the HTTP server's /graphql path. Operations run through yoga.getEnveloped, so
 * they get the same plugins (armor, error masking, the shared job events) and context as HTTP
 * requests.
 *
 * Limits, each per api process: BACKUPS_API_MAX_SOCKETS_PER_ADDRESS open sockets per client
 * address (the upgrade over it is answered 429 Too Many Requests), one authenticated viewer per
 * socket (anonymous or refused credentials: closed with 4403 Forbidden; no connection_init
 * within 3 s: 4408), and BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER live subscriptions per session
 * or API token (the next one gets an error message, TOO_MANY_SUBSCRIPTIONS).
 */
export function attachWebSocket(
  server: Server,
  yoga: ApiYoga,
  config: Config,
  services: () => ApiServices,
  metrics?: ApiMetrics,
) {
  // No per-message compression (ws's server default, said here): a zlib context per socket
  // costs memory and CPU for frames of a few hundred bytes.
  const wss = new WebSocketServer({
    noServer: true,
    path: GRAPHQL_PATH,
    maxPayload: 100_000,
    perMessageDeflate: false,
  });
  const socketsPerAddress = new KeyedLimit(config.BACKUPS_API_MAX_SOCKETS_PER_ADDRESS);
  const subscriptionsPerViewer = new KeyedLimit(config.BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER);
  const sockets = new WeakMap<WebSocket, SocketState>();
  // Operations over a socket have no HTTP request of their own; yoga's context wants one.
  const socketRequest = new Request(`http://localhost${GRAPHQL_PATH}`);

  // The place is taken before the handshake and given back when the TCP socket closes, which
  // it does however the upgrade or the WebSocket ends.
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const address = clientAddress(request, config.BACKUPS_TRUST_PROXY) ?? 'unknown';
    if (!socketsPerAddress.take(address)) {
      refuseUpgrade(socket, 429, 'Too Many Requests');
      return;
    }
    socket.once('close', () => socketsPerAddress.release(address));
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  };
  server.on('upgrade', onUpgrade);

  const release = (state: SocketState | undefined, id: string) => {
    const field = state?.subscriptions.get(id);
    if (state && field !== undefined) {
      state.subscriptions.delete(id);
      subscriptionsPerViewer.release(credentialKey(state.viewer));
      metrics?.subscriptionEnded(field);
    }
  };
  wss.on('connection', (ws) => {
    metrics?.socketOpened();
    ws.once('close', () => metrics?.socketClosed());
  });

  const disposable = useServer(
    {
      connectionInitWaitTimeout: CONNECTION_INIT_WAIT_MS,
      onConnect: async (ctx) => {
        const viewer = await socketViewer(services(), ctx.connectionParams, ctx.extra.request);
        if (!viewer) {
          // graphql-ws would close with 4403 "Forbidden" alone: say why.
          ctx.extra.socket.close(
            4403,
            'Forbidden: send an API token in connection_init, or sign in',
          );
          return false;
        }
        sockets.set(ctx.extra.socket, { viewer, subscriptions: new Map() });
        return true;
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      // A shared subscription's frames are written by SocketSubscription, the rest of the
      // protocol stays graphql-ws's.
      subscribe: (args) => {
        const root = args.rootValue as EnvelopedRoot;
        const result = root.subscribe(args);
        return (
          result instanceof Promise ? result.then(root.direct) : root.direct(result)
        ) as never;
      },
      onSubscribe: async (ctx, id, params) => {
        const state = sockets.get(ctx.extra.socket);
        const request = ctx.extra.request;
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ip: clientAddress(request, config.BACKUPS_TRUST_PROXY),
          userAgent: request.headers['user-agent'] ?? null,
          socketViewer: state?.viewer ?? null,
          request: socketRequest,
          params,
        });
        let document: ReturnType<typeof parse>;
        try {
          document = parse(params.query);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: {
            execute,
            subscribe,
            direct: (result) =>
              result instanceof SharedStream
                ? new SocketSubscription(result, ctx.extra.socket, id)
                : result,
          } satisfies EnvelopedRoot,
        };
        // Queries and mutations over the socket end at once: only subscriptions hold a place.
        const operation = getOperationAST(document, params.operationName)?.operation;
        if (state && operation === 'subscription') {
          if (!subscriptionsPerViewer.take(credentialKey(state.viewer))) {
            return [tooManySubscriptions(subscriptionsPerViewer.limit)];
          }
          const field = rootField(document, params.operationName);
          state.subscriptions.set(id, field);
          metrics?.subscriptionStarted(field);
        }
        return args;
      },
      // Every operation that started ends here: done, failed, ended by the client, or its
      // socket closed.
      onComplete: (ctx, id) => release(sockets.get(ctx.extra.socket), id),
      // And what is left when the socket closes: an operation whose execution threw.
      onClose: (ctx) => {
        const state = sockets.get(ctx.extra.socket);
        for (const id of [...(state?.subscriptions.keys() ?? [])]) release(state, id);
      },
    },
    wss,
  );

  return {
    wss,
    async close(): Promise<void> {
      server.off('upgrade', onUpgrade);
      for (const client of wss.clients) client.close(1001, 'Going away');
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
