import type { Redis } from 'ioredis';
import type { ApiServices } from '../graphql/context.js';
import type { Logger } from '../infra/logger.js';
import { sessionCredential, tokenCredential } from './viewer.js';

/**
 * "This session or token has ended" over Redis pub/sub, so that every api process ends the
 * subscriptions it holds for it at once (auth/credential-watch.ts) instead of at its next
 * periodic check. Ids only, as job events (jobs/job-events.ts): the session's id (the SHA-256
 * of its cookie, never the cookie) or the token's row id.
 */
export type CredentialEnded = { session: string } | { token: number };

/** Where revocations are announced: the api's or the CLI's Redis and the configured prefix. */
export interface CredentialEvents {
  redis: Pick<Redis, 'publish'>;
  prefix: string;
  /** Told when an announcement could not be made (the periodic check still ends the streams). */
  logger?: Pick<Logger, 'warn'>;
  /** Told first, in the announcing process (the api's token cache forgets the token at once). */
  local?: (ended: CredentialEnded) => void;
}

/** How long a revocation waits for its announcement (ioredis queues commands while offline). */
const ANNOUNCE_WAIT_MS = 2000;

/** The api's: its Redis connection for commands, the configured prefix, its log. */
export function apiCredentialEvents(
  services: Pick<ApiServices, 'redis' | 'config' | 'logger' | 'bearers'>,
): CredentialEvents {
  return {
    redis: services.redis,
    prefix: services.config.BACKUPS_REDIS_PREFIX,
    logger: services.logger,
    local: (ended) => services.bearers.ended(ended),
  };
}

export function credentialEventsTopic(prefix: string): string {
  return `${prefix}:credentialEnded`;
}

/**
 * Announces an ended credential. Never throws: the row is already changed, which is what
 * counts; a lost announcement only delays the end of its subscriptions until the watchers'
 * next check of the database.
 */
export async function announceCredentialEnded(
  events: CredentialEvents,
  ended: CredentialEnded,
): Promise<void> {
  events.local?.(ended);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ANNOUNCE_WAIT_MS);
  });
  try {
    const outcome = await Promise.race([
      events.redis.publish(credentialEventsTopic(events.prefix), JSON.stringify(ended)),
      timeout,
    ]);
    if (outcome === 'timeout') {
      events.logger?.warn(ended, 'the end of a credential could not be announced in time');
    }
  } catch (error) {
    events.logger?.warn({ err: error, ...ended }, 'the end of a credential was not announced');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The credential a message names, as a credentialKey (auth/viewer.ts); null for anything
 * else (the channel is shared by every api process: what arrives on it is checked, not trusted).
 */
export function endedCredentialKey(message: unknown): string | null {
  if (typeof message !== 'object' || message === null) return null;
  if ('session' in message && typeof message.session === 'string') {
    return /^[0-9a-f]{64}$/.test(message.session) ? sessionCredential(message.session) : null;
  }
  if (
    'token' in message &&
    typeof message.token === 'number' &&
    Number.isSafeInteger(message.token)
  ) {
    return tokenCredential(message.token);
  }
  return null;
}
