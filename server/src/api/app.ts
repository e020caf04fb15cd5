import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { EntityManager, MikroORM } from '@mikro-orm/mariadb';
import { createPubSub } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import { BearerCache } from '../auth/bearer-cache.js';
import { finishOidc, OIDC_CALLBACK_PATH, OIDC_START_PATH, startOidc } from '../auth/oidc.js';
import { deleteExpiredSessions } from '../auth/sessions.js';
import type { Config } from '../config/config.js';
import { openOrm } from '../db/orm.js';
import type { ApiServices, JobPubSub } from '../graphql/context.js';
import { createLogger, type Logger } from '../infra/logger.js';
import { RateLimiter } from '../infra/rate-limit.js';
import { createRedis } from '../infra/redis.js';
import { QueueRegistry } from '../jobs/job-queue.js';
import { JobStore } from '../jobs/job-store.js';
import { deliveryQueues } from '../webhooks/webhook-queue.js';
import { clientAddress } from './client-address.js';
import { ApiMetrics } from './metrics.js';
import { serveWebApp } from './web-files.js';
import { attachWebSocket } from './websocket.js';
import { type ApiYoga, createApiYoga, GRAPHQL_PATH, handleHttpRequest } from './yoga.js';

export interface BuildAppOptions {
  config: Config;
  /** An ORM the caller owns (tests); otherwise the app opens and closes its own. */
  orm?: MikroORM;
  logger?: Logger;
  /**
   * What /metrics answers. By default this process's own metrics; one of several api
   * processes (node:cluster) answers with all of theirs together, from the primary.
   */
  metricsText?: (own: ApiMetrics) => Promise<{ contentType: string; body: string }>;
}

export interface ApiApp {
  server: Server;
  yoga: ApiYoga;
  metrics: ApiMetrics;
  start(): Promise<{ port: number }>;
  stop(): Promise<void>;
}

type BodyResult = { ok: true; body: Buffer } | { ok: false };

/** Reads a request body up to `limit` bytes; a larger one is drained (up to a point) and refused. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit * 50) req.destroy();
    });
    req.on('end', () =>
      resolve(size <= limit ? { ok: true, body: Buffer.concat(chunks) } : { ok: false }),
    );
    req.on('close', () => resolve({ ok: false }));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

/** The api process: graphql-yoga over HTTP and graphql-ws on /graphql, health, and the SPA. */
export function buildApp(options: BuildAppOptions): ApiApp {
  const { config } = options;
  const logger = options.logger ?? createLogger('api', config.BACKUPS_LOG_LEVEL);
  let services: ApiServices | undefined;
  let subscriber: Redis | undefined;
  const current = (): ApiServices => {
    if (!services) throw new Error('the api is not started');
    return services;
  };

  const metrics = new ApiMetrics();
  const yoga = createApiYoga(current, metrics);
  const metricsText =
    options.metricsText ??
    (async (own: ApiMetrics) => ({
      contentType: own.registry.contentType,
      body: await own.registry.metrics(),
    }));

  async function handleGraphql(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const limit = config.BACKUPS_API_MAX_BODY_BYTES;
    const declared = Number(req.headers['content-length'] ?? 0);
    let body: Buffer | undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      const read = declared > limit ? ({ ok: false } as const) : await readBody(req, limit);
      if (!read.ok) {
        req.resume();
        json(res, 413, { errors: [{ message: `The request is larger than ${limit} bytes.` }] });
        return;
      }
      body = read.body;
    }
    const { Headers, Request } = yoga.fetchAPI;
    // Node has already joined a request's repeated headers (Cookie with "; ", the others with
    // ", "), so its object is the header list as it is: whatwg-node reads it lazily, without
    // building a map per request. Only Set-Cookie (never sent by browsers) comes as an array.
    let headers: InstanceType<typeof Headers> | Record<string, string>;
    if (req.headers['set-cookie'] === undefined) headers = req.headers as Record<string, string>;
    else {
      const copied = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (Array.isArray(value)) for (const v of value) copied.append(name, v);
        else if (value !== undefined) copied.set(name, value);
      }
      headers = copied;
    }
    const responseCookies: string[] = [];
    const response = await handleHttpRequest(
      yoga,
      new Request(`http://localhost${req.url ?? GRAPHQL_PATH}`, {
        method,
        headers,
        // A view of the bytes read, not a copy.
        body: body
          ? new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength)
          : undefined,
        // No signal: nothing reads one (yoga's execution cancellation is not used, its body
        // limit is off), and a controller and a 'close' listener per request cost ~1% of the
        // api's CPU per listing in a profile. A query whose client went away runs to its end.
      }),
      {
        ip: clientAddress(req, config.BACKUPS_TRUST_PROXY),
        userAgent: req.headers['user-agent'] ?? null,
        responseCookies,
      },
    );
    const outHeaders: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') outHeaders[name] = value;
    });
    const cookies = [...response.headers.getSetCookie(), ...responseCookies];
    if (cookies.length > 0) outHeaders['set-cookie'] = cookies;
    // GraphQL over HTTP answers are single JSON documents (no @defer; subscriptions, which
    // yoga would stream, are refused over HTTP: yoga.ts): the text as yoga made it (reading
    // `response.body` would build a stream over a copy first), sent with the headers in one
    // write.
    const text = await response.text();
    if (text !== '') outHeaders['content-length'] = String(Buffer.byteLength(text));
    res.writeHead(response.status, outHeaders);
    res.end(text === '' ? undefined : text);
  }

  async function ready(): Promise<boolean> {
    if (!services) return false;
    try {
      await services.orm.em.getConnection().execute('select 1');
      await services.redis.ping();
      return true;
    } catch {
      return false;
    }
  }

  const oidcDeps = () => {
    const { orm, redis, limiter } = current();
    return { config, em: orm.em.fork() as EntityManager, redis, limiter, logger };
  };
  // nginx lets only the machine itself reach /metrics (deploy/nginx); the api listens on
  // loopback by default.
  async function serveMetrics(res: ServerResponse): Promise<void> {
    const { contentType, body } = await metricsText(metrics);
    res.writeHead(200, { 'content-type': contentType }).end(body);
  }

  const server = createServer((req, res) => {
    // The GraphQL path as clients send it needs no URL parsing (a URL per request); anything
    // else is parsed as before.
    const url = req.url ?? '/';
    const pathname =
      url === GRAPHQL_PATH || url.startsWith(`${GRAPHQL_PATH}?`)
        ? GRAPHQL_PATH
        : new URL(url, 'http://localhost').pathname;
    const route =
      pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics'
        ? pathname.slice(1)
        : pathname === GRAPHQL_PATH
          ? 'graphql'
          : 'web';
    const started = process.hrtime.bigint();
    res.once('finish', () =>
      metrics.answered(route, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9),
    );
    const handled =
      route === 'healthz'
        ? Promise.resolve(json(res, 200, { status: 'ok' }))
        : route === 'readyz'
          ? ready().then((ok) => json(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' }))
          : route === 'metrics'
            ? serveMetrics(res)
            : route === 'graphql'
              ? handleGraphql(req, res)
              : config.BACKUPS_OIDC_ISSUER && pathname === OIDC_START_PATH
                ? startOidc(oidcDeps(), res, clientAddress(req, config.BACKUPS_TRUST_PROXY))
                : config.BACKUPS_OIDC_ISSUER && pathname === OIDC_CALLBACK_PATH
                  ? finishOidc(oidcDeps(), req, res, clientAddress(req, config.BACKUPS_TRUST_PROXY))
                  : Promise.resolve(serveWebApp(req, res, config.BACKUPS_WEB_DIR));
    handled.catch((error: unknown) => {
      logger.error({ err: error }, 'request failed');
      if (!res.headersSent) json(res, 500, { errors: [{ message: 'Unexpected error.' }] });
      else res.destroy();
    });
  });

  const socket = attachWebSocket(server, yoga, config, current, metrics);
  let ownsOrm = false;
  let sessionSweep: NodeJS.Timeout | undefined;

  return {
    server,
    yoga,
    metrics,
    async start() {
      let orm = options.orm;
      if (!orm) {
        orm = await openOrm(config);
        ownsOrm = true;
      }
      const redis = createRedis(config.BACKUPS_REDIS_URL, 'api');
      subscriber = createRedis(config.BACKUPS_REDIS_URL, 'api-events');
      const pubSub: JobPubSub = createPubSub({
        eventTarget: createRedisEventTarget({ publishClient: redis, subscribeClient: subscriber }),
      });
      const queueOptions = {
        redisUrl: config.BACKUPS_REDIS_URL,
        prefix: config.BACKUPS_REDIS_PREFIX,
        onError: (error: Error) => logger.warn({ err: error }, 'queue error'),
      };
      const queues = new QueueRegistry(queueOptions);
      const deliveries = deliveryQueues(queueOptions);
      services = {
        config,
        orm,
        logger,
        redis,
        pubSub,
        queues,
        deliveries,
        jobs: new JobStore({
          orm,
          redis,
          prefix: config.BACKUPS_REDIS_PREFIX,
          queues,
          deliveries,
        }),
        limiter: new RateLimiter(redis, config.BACKUPS_REDIS_PREFIX),
        bearers: new BearerCache({
          pubSub,
          subscriber,
          prefix: config.BACKUPS_REDIS_PREFIX,
          logger,
        }),
        metrics,
      };
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.BACKUPS_API_PORT, config.BACKUPS_API_HOST, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { port } = server.address() as AddressInfo;
      const tidy = () =>
        deleteExpiredSessions(orm.em).catch((error: unknown) =>
          logger.warn({ err: error }, 'expired sessions could not be removed'),
        );
      void tidy();
      sessionSweep = setInterval(tidy, 3600_000);
      sessionSweep.unref();
      logger.info({ host: config.BACKUPS_API_HOST, port }, 'api listening');
      return { port };
    },
    async stop() {
      if (sessionSweep) clearInterval(sessionSweep);
      await socket.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (services) {
        await services.bearers.stop();
        await services.queues.close();
        await services.deliveries.close();
        await Promise.allSettled([services.redis.quit(), subscriber?.quit()]);
        if (ownsOrm) await services.orm.close(true);
        services = undefined;
      }
      logger.info('api stopped');
    },
  };
}
