import type { EntityManager } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import type { JobPubSub } from '../graphql/context.js';
import type { Logger } from '../infra/logger.js';
import {
  type CredentialEnded,
  credentialEventsTopic,
  endedCredentialKey,
} from './credential-events.js';
import { sha256Hex } from './credentials.js';
import {
  type BearerViewer,
  credentialKey,
  LAST_USED_PRECISION_MS,
  lookUpBearer,
  recordTokenUse,
} from './viewer.js';

/**
 * How long a token's viewer is kept without being read again. Revocations end it at once (the
 * messages of auth/credential-events.ts); this bounds only what no message announces (a row
 * changed by hand), as the periodic check of subscriptions does (auth/credential-watch.ts).
 */
export const BEARER_CACHE_MS = 30_000;

/** Tokens remembered at most (the oldest goes first): a bound on memory, not a working set. */
const MAX_ENTRIES = 20_000;

interface Entry {
  viewer: BearerViewer;
  /** When the row was read (ms since the epoch). */
  readAt: number;
  /** When last_used_at was last written, as far as this process knows. */
  lastUsedAt: number | null;
}

export interface BearerCacheDeps {
  pubSub: JobPubSub;
  /** The connection the pub/sub listens on: while it is down, messages are lost. */
  subscriber: Redis;
  prefix: string;
  logger: Pick<Logger, 'warn'>;
}

/**
 * The viewers of the API tokens one api process has seen lately, so that an integrator's
 * request costs no read of api_tokens. A token ends here when its revocation is announced
 * (any process or the CLI, on the channel that also ends subscriptions; the process that
 * revokes ends it at once, before the message), and after BEARER_CACHE_MS at the latest. The
 * cache is used only while this process hears the revocation channel: from the confirmation of
 * its subscription, and emptied whenever the subscriber connection drops (what is announced
 * while it is away is lost). A read that a revocation overtook (begun before the message,
 * answered after it) is not kept. Unknown tokens are never kept: a forged token costs a read,
 * as before.
 */
export class BearerCache {
  /** token hash -> entry */
  private readonly entries = new Map<string, Entry>();
  /** credentialKey -> token hash */
  private readonly hashOf = new Map<string, string>();
  /** Counts revocations and losses of the channel: a read that saw it change is not kept. */
  private generation = 0;
  private hearing = false;
  /** Whether the pub/sub hands this cache the channel's messages. */
  private listening = false;
  private stopped = false;
  /** Whether the subscriber connection's events are followed. */
  private hooked = false;
  private messages: AsyncIterator<unknown> | undefined;
  private readonly topic: string;
  private readonly onDown = () => this.deaf();
  private readonly onReady = () => void this.confirm();
  /** The confirmation of the channel's subscription in flight (settles, never rejects). */
  private confirming: Promise<void> = Promise.resolve();

  constructor(private readonly deps: BearerCacheDeps) {
    this.topic = credentialEventsTopic(deps.prefix);
  }

  /**
   * Listens for revocations from the first token on, for the life of the api (an api that
   * serves no token subscribes to nothing); the cache serves once it hears them.
   */
  private listen(): void {
    if (this.stopped || this.messages) return;
    if (!this.hooked) {
      this.hooked = true;
      this.deps.subscriber.on('close', this.onDown);
      this.deps.subscriber.on('end', this.onDown);
      this.deps.subscriber.on('ready', this.onReady);
    }
    const messages = this.deps.pubSub.subscribe(this.topic)[Symbol.asyncIterator]();
    this.messages = messages;
    this.listening = true;
    void (async () => {
      try {
        for (;;) {
          const step = await messages.next();
          if (step.done) break;
          const key = endedCredentialKey(step.value);
          if (key) this.forget(key);
        }
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'revocations are not received: tokens are read');
      } finally {
        this.listening = false;
        if (this.messages === messages) this.messages = undefined; // the next token listens again
        this.deaf();
      }
    })();
    void this.confirm();
  }

  /**
   * Stops listening. Waits (up to 2 s) for a subscription still being made: the pub/sub does
   * not catch its SUBSCRIBE, which would fail unhandled if the connection closed under it.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.hooked = false;
    this.deps.subscriber.off('close', this.onDown);
    this.deps.subscriber.off('end', this.onDown);
    this.deps.subscriber.off('ready', this.onReady);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.confirming,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 2000);
      }),
    ]);
    clearTimeout(timer);
    await this.messages?.return?.()?.catch(() => undefined);
    this.deaf();
  }

  /** Whether cached viewers are served (the revocation channel is heard). */
  get serving(): boolean {
    return this.hearing;
  }

  /** The viewer of a bearer token; null when the token is unknown or revoked. */
  async viewer(em: EntityManager, token: string): Promise<BearerViewer | null> {
    this.listen();
    const hash = sha256Hex(token);
    const now = Date.now();
    let entry = this.hearing ? this.entries.get(hash) : undefined;
    if (entry && now - entry.readAt >= BEARER_CACHE_MS) {
      this.drop(hash, entry);
      entry = undefined;
    }
    if (!entry) {
      const generation = this.generation;
      const found = await lookUpBearer(em, hash);
      if (!found) return null;
      entry = { viewer: found.viewer, readAt: now, lastUsedAt: found.lastUsedAt };
      if (this.hearing && generation === this.generation) this.keep(hash, entry);
    }
    if (entry.lastUsedAt === null || now - entry.lastUsedAt > LAST_USED_PRECISION_MS) {
      entry.lastUsedAt = now;
      await recordTokenUse(em, entry.viewer.tokenId, now);
    }
    return entry.viewer;
  }

  /** A credential ended in this process: forgotten now, before its message comes back. */
  ended(ended: CredentialEnded): void {
    const key = endedCredentialKey(ended);
    if (key) this.forget(key);
  }

  private forget(key: string): void {
    this.generation++;
    const hash = this.hashOf.get(key);
    const entry = hash === undefined ? undefined : this.entries.get(hash);
    if (hash !== undefined && entry) this.drop(hash, entry);
  }

  private keep(hash: string, entry: Entry): void {
    if (this.entries.size >= MAX_ENTRIES) {
      for (const [oldest, old] of this.entries) {
        this.drop(oldest, old);
        break;
      }
    }
    this.entries.set(hash, entry);
    this.hashOf.set(credentialKey(entry.viewer), hash);
  }

  private drop(hash: string, entry: Entry): void {
    this.entries.delete(hash);
    const key = credentialKey(entry.viewer);
    if (this.hashOf.get(key) === hash) this.hashOf.delete(key);
  }

  /** Revocations may be missed from now on: serve nothing remembered. */
  private deaf(): void {
    this.hearing = false;
    this.generation++;
    this.entries.clear();
    this.hashOf.clear();
  }

  /**
   * Serves again once the channel's subscription is confirmed: SUBSCRIBE is answered in order,
   * after the one the pub/sub sent (subscribing twice to a channel is one subscription).
   */
  private confirm(): Promise<void> {
    this.confirming = (async () => {
      try {
        await this.deps.subscriber.subscribe(this.topic);
        if (this.listening && !this.stopped && this.deps.subscriber.status === 'ready') {
          this.hearing = true;
        }
      } catch (error) {
        if (!this.stopped) {
          this.deps.logger.warn(
            { err: error },
            'the revocation channel was not joined: tokens are read',
          );
        }
      }
    })();
    return this.confirming;
  }
}
