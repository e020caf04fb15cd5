import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { type ApiApp, buildApp } from '../../../src/api/app.js';
import { CSRF_HEADER } from '../../../src/api/yoga.js';
import { sha256Hex } from '../../../src/auth/credentials.js';
import { SESSION_COOKIE } from '../../../src/auth/sessions.js';
import { type Config, parseConfig } from '../../../src/config/config.js';
import { createLogger } from '../../../src/infra/logger.js';
import { type JobChanged, publishJobChanged } from '../../../src/jobs/job-events.js';
import { producerQueue, type QueueLane } from '../../../src/jobs/job-queue.js';
import { clearRedisPrefix, redisPrefix, type TestDatabase } from '../../support/sandbox.js';

export interface Auth {
  /** A Cookie header value, e.g. from signIn(). */
  cookie?: string;
  /** An API token, sent as a bearer token. */
  token?: string;
  /** Send the CSRF header (default true). */
  csrf?: boolean;
  headers?: Record<string, string>;
}

export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  data: T | null;
  errors: { message: string; extensions?: { code?: string } }[] | undefined;
  setCookies: string[];
}

// biome-ignore lint/suspicious/noExplicitAny: tests read results by path
export type Data = Record<string, any>;

export interface TestApi {
  app: ApiApp;
  config: Config;
  prefix: string;
  url: string;
  wsUrl: string;
  /** Posts one GraphQL operation; asserts nothing. */
  gql(query: string, variables?: Record<string, unknown>, auth?: Auth): Promise<GqlResponse<Data>>;
  /** Signs in and returns the Cookie header value of the new session. */
  signIn(email: string, password: string): Promise<string>;
  /** A graphql-ws client authenticated by token (connection_init) or cookie (upgrade). */
  wsClient(auth?: { token?: string; cookie?: string; origin?: string }): Client;
  /** Announces a job change as the worker does (after it updated the row). */
  publish(event: JobChanged): Promise<void>;
  /** The waiting jobs of a host's Bee-Queue, by their ids. */
  queuedJobIds(host: string, lane?: QueueLane): Promise<string[]>;
  stop(): Promise<void>;
}

export function testConfig(db: TestDatabase, overrides: Partial<Config> = {}): Config {
  return {
    ...parseConfig({}),
    BACKUPS_DB_NAME: db.name,
    BACKUPS_REDIS_PREFIX: redisPrefix(),
    BACKUPS_API_HOST: '127.0.0.1',
    BACKUPS_API_PORT: 0,
    BACKUPS_LOG_LEVEL: (process.env.API_TEST_LOG as Config['BACKUPS_LOG_LEVEL']) ?? 'silent',
    BACKUPS_WEB_DIR: '/nonexistent',
    ...overrides,
  };
}

/**
 * Starts the api on a free port against a test database, with its own Redis prefix (pass the
 * worker's prefix to run both against the same queues and channels). For example:
 *
 *   const api = await startTestApi({ db, prefix: worker.prefix });
 *   const cookie = await api.signIn(customer.email, PASSWORD);
 *   const created = await api.gql('mutation { createBackup(scope: BOTH) { ... } }', {}, { cookie });
 *   const sub = subscribe(api.wsClient({ cookie }), 'subscription($id: ID!) { jobUpdated(id: $id) { status } }', { id });
 *   await sub.ended; // after COMPLETED
 */
export async function startTestApi(options: {
  db: TestDatabase;
  prefix?: string;
  config?: Partial<Config>;
}): Promise<TestApi> {
  const config = testConfig(options.db, {
    ...(options.prefix ? { BACKUPS_REDIS_PREFIX: options.prefix } : {}),
    ...options.config,
  });
  const app = buildApp({
    config,
    orm: options.db.orm,
    logger: createLogger('api-test', config.BACKUPS_LOG_LEVEL),
  });
  const { port } = await app.start();
  const url = `http://127.0.0.1:${port}/graphql`;
  const wsUrl = `ws://127.0.0.1:${port}/graphql`;
  const redis = new Redis(config.BACKUPS_REDIS_URL);
  const clients: Client[] = [];

  const gql: TestApi['gql'] = async (query, variables = {}, auth = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (auth.csrf !== false) headers[CSRF_HEADER] = '1';
    if (auth.cookie) headers.cookie = auth.cookie;
    if (auth.token) headers.authorization = `Bearer ${auth.token}`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { ...headers, ...auth.headers },
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    let body: { data?: Data | null; errors?: GqlResponse['errors'] } = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { errors: [{ message: text }] };
    }
    return {
      status: response.status,
      data: body.data ?? null,
      errors: body.errors,
      setCookies: response.headers.getSetCookie(),
    };
  };

  return {
    app,
    config,
    prefix: config.BACKUPS_REDIS_PREFIX,
    url,
    wsUrl,
    gql,
    async signIn(email, password) {
      const result = await gql(
        `mutation($email: String!, $password: String!) {
          signIn(email: $email, password: $password) { __typename ... on Error { code message } }
        }`,
        { email, password },
      );
      const cookie = result.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
      if (result.data?.signIn?.__typename !== 'SignInSuccess' || !cookie) {
        throw new Error(`sign-in failed: ${JSON.stringify(result)}`);
      }
      return cookie.split(';')[0] ?? '';
    },
    wsClient(auth = {}) {
      const upgradeHeaders: Record<string, string> = {};
      if (auth.cookie) upgradeHeaders.cookie = auth.cookie;
      upgradeHeaders.origin = auth.origin ?? new URL(config.BACKUPS_PUBLIC_URL).origin;
      class AuthWebSocket extends WebSocket {
        constructor(address: string | URL, protocols?: string | string[]) {
          super(address, protocols, { headers: upgradeHeaders });
        }
      }
      const client = createClient({
        url: wsUrl,
        webSocketImpl: AuthWebSocket,
        connectionParams: auth.token ? { authorization: `Bearer ${auth.token}` } : {},
        retryAttempts: 0,
        lazy: true,
      });
      clients.push(client);
      return client;
    },
    publish: (event) => publishJobChanged(redis, config.BACKUPS_REDIS_PREFIX, event),
    async queuedJobIds(host, lane = 'jobs') {
      const queue = producerQueue(
        { redisUrl: config.BACKUPS_REDIS_URL, prefix: config.BACKUPS_REDIS_PREFIX },
        host,
        lane,
      );
      try {
        const jobs = await queue.getJobs('waiting', { start: 0, end: 1000 });
        return jobs.map((job) => job.id);
      } finally {
        await queue.close();
      }
    },
    async stop() {
      await Promise.all(clients.map((c) => c.dispose()));
      await app.stop();
      await clearRedisPrefix(config.BACKUPS_REDIS_PREFIX, redis);
      await redis.quit();
    },
  };
}

/** A subscription's results as they arrive, and how it ended. */
export interface Subscription {
  results: FormattedExecutionResult<Data, unknown>[];
  /** Resolves when the server completes the stream (or rejects on a socket error). */
  ended: Promise<void>;
  /** Waits until at least `count` results arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<FormattedExecutionResult<Data, unknown>[]>;
  stop(): void;
}

/** A socket's close (code and reason: the close event serialises to {}) or GraphQL errors. */
function describeError(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && 'reason' in error) {
    return `closed ${String(error.code)}: ${String(error.reason)}`;
  }
  return JSON.stringify(error);
}

export function subscribe(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
): Subscription {
  const results: FormattedExecutionResult<Data, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let stop: () => void = () => {};
  const ended = new Promise<void>((resolve, reject) => {
    stop = client.subscribe<Data>(
      { query, variables },
      {
        next: (result) => {
          results.push(result);
          for (const wake of waiters.splice(0)) wake();
        },
        error: (error) => reject(error instanceof Error ? error : new Error(describeError(error))),
        complete: () => resolve(),
      },
    );
  });
  ended.catch(() => {});
  return {
    results,
    ended,
    stop: () => stop(),
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (results.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`only ${results.length} of ${count} results arrived`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return results;
    },
  };
}

/** Waits a little to show that nothing (more) arrives. */
export function quietPeriod(ms = 400): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise that must settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The sessions row id of a Cookie header value from signIn(). */
export function sessionIdOf(cookie: string): string {
  return sha256Hex(cookie.slice(cookie.indexOf('=') + 1));
}

/** The reads of sessions and API tokens the api sends while `during` runs (it uses the test's ORM). */
export async function credentialReads(
  db: TestDatabase,
  during: () => Promise<unknown>,
): Promise<number> {
  const knex = db.orm.em.getConnection().getKnex();
  let reads = 0;
  const count = (query: { sql?: string }) => {
    if (/^select\b.*\bfrom\s+`?(sessions|api_tokens)`?(\s|$)/is.test(query.sql ?? '')) reads++;
  };
  knex.on('query', count);
  try {
    await during();
  } finally {
    knex.off('query', count);
  }
  return reads;
}
