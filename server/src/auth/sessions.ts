import type { EntityManager } from '@mikro-orm/mariadb';
import { announceCredentialEnded, type CredentialEvents } from './credential-events.js';
import { randomSecret, sha256Hex } from './credentials.js';
import { Session } from './session.entity.js';

export const SESSION_COOKIE = 'backups_session';

/**
 * Over https the cookie is named with the __Host- prefix: the browser then accepts it only
 * Secure, for Path=/ and from this very host, so a site on a sibling subdomain (a customer's
 * site on the hosting company's domain) can neither plant a session of its own choosing nor
 * shadow ours. Plain http (local development) cannot carry the prefix.
 */
export const HOST_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;

export interface CookieOptions {
  secure: boolean;
}

/** Cookies are Secure (and __Host-) when the public URL is https. */
export function secureCookies(publicUrl: string): boolean {
  return new URL(publicUrl).protocol === 'https:';
}

/** The name the session cookie is set and read under for this public URL. */
export function sessionCookieName(publicUrl: string): string {
  return cookieName(secureCookies(publicUrl));
}

function cookieName(secure: boolean): string {
  return secure ? HOST_SESSION_COOKIE : SESSION_COOKIE;
}

/** Stores a new session (only the SHA-256 of its token) and returns the cookie's token. */
export async function createSession(
  em: EntityManager,
  input: {
    /** A customer's session, or a staff member's (exactly one of the two). */
    customerId?: number;
    staffId?: number;
    days: number;
    ip: string | null;
    userAgent: string | null;
  },
): Promise<{ token: string; expiresAt: Date }> {
  const token = randomSecret();
  const expiresAt = new Date(Date.now() + input.days * 86_400_000);
  const fork = em.fork();
  fork.create(Session, {
    id: sha256Hex(token),
    customer: input.customerId ?? null,
    staff: input.staffId ?? null,
    expiresAt,
    ip: input.ip,
    userAgent: input.userAgent?.slice(0, 255) ?? null,
  });
  await fork.flush();
  return { token, expiresAt };
}

/**
 * Ends a session (sign-out) and announces it, so that every api process ends the session's
 * subscriptions at once (auth/credential-watch.ts).
 */
export async function deleteSession(
  em: EntityManager,
  sessionId: string,
  events: CredentialEvents,
): Promise<void> {
  const deleted = await em.fork().nativeDelete(Session, { id: sessionId });
  if (deleted > 0) await announceCredentialEnded(events, { session: sessionId });
}

/**
 * Removes sessions past their expiry (they no longer sign anyone in; this only tidies, and
 * announces nothing: subscriptions end at a session's expiry by themselves).
 */
export async function deleteExpiredSessions(em: EntityManager): Promise<number> {
  return em.fork().nativeDelete(Session, { expiresAt: { $lt: new Date() } });
}

export function sessionCookie(
  token: string,
  maxAgeSeconds: number,
  options: CookieOptions,
): string {
  return [
    `${cookieName(options.secure)}=${token}`,
    'HttpOnly',
    'SameSite=Lax',
    'Path=/',
    `Max-Age=${maxAgeSeconds}`,
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}

export function clearedSessionCookie(options: CookieOptions): string {
  return sessionCookie('', 0, options);
}
