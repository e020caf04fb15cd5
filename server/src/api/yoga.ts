import { useGraphQlJit } from '@envelop/graphql-jit';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  createYoga,
  maskError,
  type Plugin,
  processRegularResult,
  type YogaInitialContext,
  type YogaServerInstance,
} from 'graphql-yoga';
import { readBearer, readCookie } from '../auth/credentials.js';
import { sessionCookieName } from '../auth/sessions.js';
import { type Viewer, viewerFromSession, viewerStillValid } from '../auth/viewer.js';
import { lazyFork } from '../db/lazy-fork.js';
import type { ApiServices, GraphQLContext } from '../graphql/context.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import type { ApiMetrics } from './metrics.js';
import { apiSchema } from './schema.js';
import { useSharedSubscriptionEvents } from './shared-subscription.js';

export const GRAPHQL_PATH = '/graphql';
export const CSRF_HEADER = 'x-graphql-yoga-csrf';

/** What the HTTP server or the WebSocket server hands to each operation. */
export interface ServerContext {
  ip: string | null;
  userAgent: string | null;
  /** HTTP: Set-Cookie values for the response. */
  responseCookies?: string[];
  /** WebSocket: the viewer authenticated at connection_init (undefined over HTTP). */
  socketViewer?: Viewer | null;
}

export type ApiYoga = YogaServerInstance<ServerContext, GraphQLContext>;

/** The server context of each HTTP request yoga is handling, by its Request. */
const httpContexts = new WeakMap<Request, ServerContext>();

/**
 * yoga's answer to an HTTP request, with its server context. The context is found by the
 * request rather than handed to yoga: whatwg-node copies a given context's every property into
 * a new object for each request (Object.create, then each property descriptor: ~2% of the
 * api's CPU per `me { snapshots }` request in a profile).
 */
export function handleHttpRequest(
  yoga: ApiYoga,
  request: Request,
  context: ServerContext,
): Response | Promise<Response> {
  httpContexts.set(request, context);
  return yoga.handleRequest(request, undefined as never);
}

/** What a client sees of an unexpected error (yoga's default, said here for both maskings). */
const MASKED_MESSAGE = 'Unexpected error.';

const SUBSCRIPTIONS_OVER_HTTP_MESSAGE = `Subscriptions are served over WebSocket (graphql-ws) at ${GRAPHQL_PATH}.`;

/** Whether an operation came over the socket (websocket.ts) rather than an HTTP request. */
function overWebSocket(context: ServerContext): boolean {
  return context.socketViewer !== undefined;
}

function badToken(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
  });
}

/** Bearer token first (an integrator), else the session cookie (a browser), else nobody. */
async function viewerOfRequest(services: ApiServices, request: Request): Promise<Viewer | null> {
  const bearer = readBearer(request.headers.get('authorization'));
  if (bearer === null) throw badToken('Send the API token as "Authorization: Bearer <token>".');
  if (bearer !== undefined) {
    const viewer = await services.bearers.viewer(services.orm.em, bearer);
    if (!viewer) throw badToken('The API token is unknown or revoked.');
    return viewer;
  }
  const session = readCookie(
    request.headers.get('cookie'),
    sessionCookieName(services.config.BACKUPS_PUBLIC_URL),
  );
  return session ? viewerFromSession(services.orm.em, session) : null;
}

/**
 * Cookie sessions are ambient authority: every request that does not carry a bearer token
 * must carry the CSRF header, which a cross-site form or a "simple" fetch cannot set.
 */
function csrfPrevention(): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      if (request.method === 'OPTIONS') return;
      if (request.headers.has('authorization') || request.headers.has(CSRF_HEADER)) return;
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({
            errors: [
              {
                message: `Requests without a bearer token must send the ${CSRF_HEADER} header.`,
                extensions: { code: 'CSRF_PREVENTED' },
              },
            ],
          }),
          { status: 403, headers: { 'content-type': 'application/json' } },
        ),
      );
    },
  };
}

/**
 * Subscriptions over HTTP are refused: yoga would answer them with a stream (SSE, multipart)
 * that lasts as long as the job, and app.ts sends whole answers, so the request would hang,
 * holding a connection and a job watcher, until nginx gives up. Refused after validation and
 * before the subscription's resolver runs (no watcher is made), as plain JSON whatever the
 * Accept header asked for, since the client may not be reading a stream.
 */
function subscriptionsOverWebSocketOnly(): Plugin<ServerContext> {
  const refused = new WeakSet<Request>();
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      const context = args.contextValue as ServerContext & YogaInitialContext;
      if (overWebSocket(context)) return;
      refused.add(context.request);
      setResultAndStopExecution({
        errors: [
          new GraphQLError(SUBSCRIPTIONS_OVER_HTTP_MESSAGE, {
            extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
          }),
        ],
      });
    },
    onResultProcess({ request, setResultProcessor }) {
      if (refused.has(request)) setResultProcessor(processRegularResult, 'application/json');
    },
  };
}

export function createApiYoga(services: () => ApiServices, metrics?: ApiMetrics): ApiYoga {
  return createYoga<ServerContext, GraphQLContext>({
    schema: apiSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: false,
    landingPage: false,
    multipart: false,
    // No CORS headers at all. yoga's default reflects any Origin with
    // Access-Control-Allow-Credentials: true, so a page on another origin of the same site (a
    // sibling subdomain: SameSite=Lax still sends the session cookie there) could send the CSRF
    // header and read the answers, a new API token among them. The web app is same-origin;
    // integrators call from servers with a bearer token, where CORS does not apply.
    cors: false,
    // app.ts reads the body itself and refuses one over BACKUPS_API_MAX_BODY_BYTES (413)
    // before yoga sees it; yoga's own limit would pipe every body through a TransformStream.
    maxRequestBodySize: false,
    // Clients see GraphQLErrors' messages and codes; anything else becomes "Unexpected error."
    maskedErrors: { isDev: false, errorMessage: MASKED_MESSAGE },
    logging: {
      debug: (...args) => services().logger.debug({ args }, 'yoga'),
      info: (...args) => services().logger.info({ args }, 'yoga'),
      warn: (...args) => services().logger.warn({ args }, 'yoga'),
      error: (...args) => services().logger.error({ args }, 'yoga'),
    },
    plugins: [
      csrfPrevention(),
      subscriptionsOverWebSocketOnly(),
      EnvelopArmorPlugin({
        maxDepth: { n: 10 },
        costLimit: { maxCost: 5000 },
        maxAliases: { n: 15 },
        maxDirectives: { n: 20 },
        maxTokens: { n: 2000 },
        blockFieldSuggestion: { enabled: true },
      }),
      // Operations compiled to JavaScript once per document (graphql-jit), instead of walking
      // the document for every field of every result: ~14% less CPU per `me { snapshots }`
      // request, measured side by side. Resolver errors lose their `locations` (paths stay).
      useGraphQlJit(),
      // Before the shared subscriptions, which end the onSubscribe hooks.
      ...(metrics ? [metrics.plugin()] : []),
      // After graphql-jit, whose subscribe it replaces. Only sockets run subscriptions (above).
      // Masks as yoga's maskedErrors below does (and logs what it masks, as yoga does).
      useSharedSubscriptionEvents((error) => {
        const masked = maskError(error, MASKED_MESSAGE, false);
        if (masked !== error) services().logger.error({ args: [error] }, 'yoga');
        return masked;
      }),
    ],
    context: async (yogaContext): Promise<GraphQLContext> => {
      const svc = services();
      // An HTTP request's server context (handleHttpRequest), or a socket operation's own.
      const initial: ServerContext = httpContexts.get(yogaContext.request) ?? yogaContext;
      let viewer: Viewer | null;
      if (overWebSocket(initial)) {
        // A socket authenticated at connect; its session or token may have ended since.
        viewer =
          initial.socketViewer && (await viewerStillValid(svc.orm.em, initial.socketViewer))
            ? initial.socketViewer
            : null;
      } else {
        viewer = await viewerOfRequest(svc, yogaContext.request);
      }
      const cookies = initial.responseCookies;
      return {
        services: svc,
        em: lazyFork(svc.orm.em),
        viewer,
        ip: initial.ip,
        userAgent: initial.userAgent,
        setCookie: (cookie) => cookies?.push(cookie),
      };
    },
  });
}
