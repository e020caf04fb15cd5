import type { ApiServices } from '../graphql/context.js';
import { credentialEventsTopic, endedCredentialKey } from './credential-events.js';
import { credentialKey, liveCredentials, type Viewer } from './viewer.js';

/**
 * How often the sessions and tokens that a process's subscriptions hold are read again: the
 * safety net behind the revocation messages (one lost while Redis was down, a row changed by
 * hand). Not a setting; tests shorten it before their api's first subscription.
 */
export const credentialRecheck = { everyMs: 30_000 };

/**
 * A revocation is remembered at least this long, for a subscription authorised just before it
 * arrived (its credential checked, its feed not yet joined).
 */
const REMEMBER_ENDED_MS = 10_000;

/** Credentials per query of a periodic check. */
const CHECK_BATCH = 500;

/** setTimeout's longest delay (about 24.8 days; sessions may last longer). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Held {
  viewer: Viewer;
  /** When the session ends by itself (ms since the epoch); null for a token. */
  expiresAt: number | null;
  expiry: NodeJS.Timeout | undefined;
  /** One per subscription holding the credential: what to call when it ends. */
  holders: Set<() => void>;
}

/**
 * The credentials (sessions, API tokens) that one api process's subscriptions hold, and when
 * they end: at once on a revocation message (auth/credential-events.ts, from any process or
 * the CLI), at a session's expiry by a timer (its time is known, nothing is read), and at the
 * latest at the next periodic check of the database, one query per kind for all of them. So a
 * job's progress events cost no credential read: the job feeds (jobs/job-watch.ts) only ask,
 * in memory, whether the viewer may see the job.
 */
export class CredentialWatch {
  private readonly held = new Map<string, Held>();
  /** credential -> when its revocation arrived, oldest first */
  private readonly recentlyEnded = new Map<string, number>();
  private listening = false;
  private recheck: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(private readonly services: ApiServices) {
    // After Redis comes back, revocations announced while it was away are lost: read them.
    services.redis.on('ready', () => {
      if (this.held.size > 0) void this.checkAll();
    });
  }

  /**
   * Calls `ended` once, when the viewer's session or token ends (never synchronously);
   * returns the release, for a subscription that ends first.
   */
  hold(viewer: Viewer, ended: () => void): () => void {
    this.listen();
    const key = credentialKey(viewer);
    let held = this.held.get(key);
    if (!held) {
      held = { viewer, expiresAt: null, expiry: undefined, holders: new Set() };
      this.held.set(key, held);
      if (viewer.kind === 'customer') this.expireAt(key, held, viewer.expiresAt.getTime());
      this.startRechecks();
    }
    const holder = () => ended();
    held.holders.add(holder);
    if (this.recentlyEnded.has(key)) queueMicrotask(() => this.end(key));
    return () => {
      const current = this.held.get(key);
      if (!current?.holders.delete(holder)) return;
      if (current.holders.size === 0) this.forget(key, current);
    };
  }

  /** Reads every held credential again: ends those that are gone, follows changed expiries. */
  async checkAll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const entries = [...this.held];
      for (let i = 0; i < entries.length; i += CHECK_BATCH) {
        const batch = entries.slice(i, i + CHECK_BATCH);
        const live = await liveCredentials(
          this.services.orm.em,
          batch.map(([, held]) => held.viewer),
        );
        for (const [key, held] of batch) {
          if (this.held.get(key) !== held) continue; // ended or released meanwhile
          const state = live.get(key);
          if (!state) this.end(key);
          else if (state.expiresAt) this.expireAt(key, held, state.expiresAt.getTime());
        }
      }
    } catch (error) {
      // The database is away: the streams go on, the next check tries again.
      this.services.logger.warn({ err: error }, 'the credentials of subscriptions were not read');
    } finally {
      this.checking = false;
    }
  }

  /** Listens for revocations from the first subscription on, for the life of the process. */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    const topic = credentialEventsTopic(this.services.config.BACKUPS_REDIS_PREFIX);
    const messages: AsyncIterable<unknown> = this.services.pubSub.subscribe(topic);
    void (async () => {
      try {
        for await (const message of messages) {
          const key = endedCredentialKey(message);
          if (key) this.revoked(key);
        }
      } catch (error) {
        this.services.logger.warn({ err: error }, 'revocations are not received');
      } finally {
        this.listening = false; // the next subscription listens again
      }
      void this.checkAll(); // what was announced meanwhile is lost
    })();
  }

  private revoked(key: string): void {
    const at = Date.now();
    for (const [old, when] of this.recentlyEnded) {
      if (at - when < REMEMBER_ENDED_MS) break;
      this.recentlyEnded.delete(old);
    }
    this.recentlyEnded.delete(key);
    this.recentlyEnded.set(key, at);
    this.end(key);
  }

  private end(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    this.forget(key, held);
    for (const holder of held.holders) holder();
  }

  private forget(key: string, held: Held): void {
    this.held.delete(key);
    clearTimeout(held.expiry);
    if (this.held.size === 0) this.stopRechecks();
  }

  /** Ends the session at its expiry (the sessions table's rule: live while expires_at > now). */
  private expireAt(key: string, held: Held, at: number): void {
    if (held.expiresAt === at) return;
    held.expiresAt = at;
    clearTimeout(held.expiry);
    const arm = () => {
      const left = at - Date.now();
      held.expiry = setTimeout(
        () => (Date.now() >= at ? this.end(key) : arm()),
        Math.min(Math.max(0, left), MAX_TIMER_MS),
      );
      held.expiry.unref();
    };
    arm();
  }

  private startRechecks(): void {
    if (this.recheck) return;
    this.recheck = setInterval(() => void this.checkAll(), credentialRecheck.everyMs);
    this.recheck.unref();
  }

  private stopRechecks(): void {
    clearInterval(this.recheck);
    this.recheck = undefined;
  }
}

const watches = new WeakMap<ApiServices, CredentialWatch>();

/** The credential watch of one api (services). */
export function credentialWatchOf(services: ApiServices): CredentialWatch {
  let watch = watches.get(services);
  if (!watch) {
    watch = new CredentialWatch(services);
    watches.set(services, watch);
  }
  return watch;
}
