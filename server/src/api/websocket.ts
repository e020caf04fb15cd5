import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { envelop, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { readBearer, readCookie } from '../auth/credentials.js';
import { sessionCookieName } from '../auth/sessions.js';
import { type Viewer, viewerFromBearer, viewerFromSession } from '../auth/viewer.js';
import type { ApiServices } from '../graphql/context.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { clientAddress } from './client-address.js';
import { useSharedSubscriptionEvents } from './shared-subscription.js';
import { type ApiYoga, GRAPHQL_PATH } from './yoga.js';

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/**
 * The viewer of a new socket: the bearer token of connection_init, or the session cookie of
 * the upgrade request when it comes from our own origin (cross-site WebSocket hijacking).
 * 'refused' closes the socket.
 */
async function socketViewer(
  services: ApiServices,
  params: Record<string, unknown> | undefined,
  request: IncomingMessage,
): Promise<Viewer | null | 'refused'> {
  const authorization = params?.authorization;
  if (typeof authorization === 'string' && authorization !== '') {
    const token = readBearer(authorization);
    if (!token) return 'refused';
    return (await viewerFromBearer(services.orm.em, token)) ?? 'refused';
  }
  const session = readCookie(
    request.headers.cookie,
    sessionCookieName(services.config.BACKUPS_PUBLIC_URL),
  );
  if (!session) return null;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== new URL(services.config.BACKUPS_PUBLIC_URL).origin) {
    return 'refused';
  }
  return viewerFromSession(services.orm.em, session);
}

/**
 * yoga's envelop plugins, for an envelop of our own. yoga's list already holds the plugins
 * that others add when initialised (armor's rules): those are left out here, so that the new
 * envelop's initialisation adds them once, where yoga has them.
 */
function yogaPlugins(yoga: ApiYoga): Plugin[] {
  const all = [...new Set((yoga as unknown as { plugins: Plugin[] }).plugins)];
  const once = new Set<Plugin>();
  const added = new Set<Plugin>();
  for (const plugin of (envelop({ plugins: all }) as unknown as { _plugins: Plugin[] })._plugins) {
    if (once.has(plugin)) added.add(plugin);
    once.add(plugin);
  }
  return all.filter((plugin) => !added.has(plugin));
}

/**
 * graphql-ws on the HTTP server's /graphql path. Operations run through yoga.getEnveloped, so
 * they get the same plugins (armor, error masking) and context as HTTP requests.
 */
export function attachWebSocket(server: Server, yoga: ApiYoga, services: () => ApiServices) {
  // No per-message compression (ws's server default, said here): a zlib context per socket
  // costs memory and CPU for frames of a few hundred bytes.
  const wss = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    maxPayload: 100_000,
    perMessageDeflate: false,
  });
  const viewers = new WeakMap<object, Viewer | null>();
  // yoga's plugins, plus one execution of each job event for all subscribers with the same
  // operation and rights (shared-subscription.ts).
  const getEnveloped = envelop({
    plugins: [...yogaPlugins(yoga), useSharedSubscriptionEvents()],
  }) as unknown as ApiYoga['getEnveloped'];
  // Operations over a socket have no HTTP request of their own; yoga's context wants one.
  const socketRequest = new Request(`http://localhost${GRAPHQL_PATH}`);

  const disposable = useServer(
    {
      onConnect: async (ctx) => {
        const viewer = await socketViewer(services(), ctx.connectionParams, ctx.extra.request);
        if (viewer === 'refused') return false;
        viewers.set(ctx.extra.socket, viewer);
        return true;
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
        const request = ctx.extra.request;
        const { schema, execute, subscribe, contextFactory, parse, validate } = getEnveloped({
          ip: clientAddress(request, services().config.BACKUPS_TRUST_PROXY),
          userAgent: request.headers['user-agent'] ?? null,
          socketViewer: viewers.get(ctx.extra.socket) ?? null,
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
          rootValue: { execute, subscribe } satisfies EnvelopedRoot,
        };
        return args;
      },
    },
    wss,
  );

  return {
    wss,
    async close(): Promise<void> {
      for (const client of wss.clients) client.close(1001, 'Going away');
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
