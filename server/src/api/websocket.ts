import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { readBearer, readCookie } from '../auth/credentials.js';
import { SESSION_COOKIE } from '../auth/sessions.js';
import { type Viewer, viewerFromBearer, viewerFromSession } from '../auth/viewer.js';
import type { ApiServices } from '../graphql/context.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { clientAddress } from './client-address.js';
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
  const session = readCookie(request.headers.cookie, SESSION_COOKIE);
  if (!session) return null;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== new URL(services.config.BACKUPS_PUBLIC_URL).origin) {
    return 'refused';
  }
  return viewerFromSession(services.orm.em, session);
}

/**
 * graphql-ws on the HTTP server's /graphql path. Operations run through yoga.getEnveloped, so
 * they get the same plugins (armor, error masking) and context as HTTP requests.
 */
export function attachWebSocket(server: Server, yoga: ApiYoga, services: () => ApiServices) {
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: 100_000 });
  const viewers = new WeakMap<object, Viewer | null>();

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
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ip: clientAddress(request, services().config.BACKUPS_TRUST_PROXY),
          userAgent: request.headers['user-agent'] ?? null,
          socketViewer: viewers.get(ctx.extra.socket) ?? null,
          request: new Request(`http://localhost${GRAPHQL_PATH}`),
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
