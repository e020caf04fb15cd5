import type { EntityManager } from '@mikro-orm/mariadb';
import { randomSecret, sha256Hex } from './credentials.js';
import { Session } from './session.entity.js';

export const SESSION_COOKIE = 'backups_session';

export interface CookieOptions {
  secure: boolean;
}

/** Stores a new session (only the SHA-256 of its token) and returns the cookie's token. */
export async function createSession(
  em: EntityManager,
  input: { customerId: number; days: number; ip: string | null; userAgent: string | null },
): Promise<{ token: string; expiresAt: Date }> {
  const token = randomSecret();
  const expiresAt = new Date(Date.now() + input.days * 86_400_000);
  const fork = em.fork();
  fork.create(Session, {
    id: sha256Hex(token),
    customer: input.customerId,
    expiresAt,
    ip: input.ip,
    userAgent: input.userAgent?.slice(0, 255) ?? null,
  });
  await fork.flush();
  return { token, expiresAt };
}

export async function deleteSession(em: EntityManager, sessionId: string): Promise<void> {
  await em.fork().nativeDelete(Session, { id: sessionId });
}

/** Removes sessions past their expiry (they no longer sign anyone in; this only tidies). */
export async function deleteExpiredSessions(em: EntityManager): Promise<number> {
  return em.fork().nativeDelete(Session, { expiresAt: { $lt: new Date() } });
}

export function sessionCookie(
  token: string,
  maxAgeSeconds: number,
  options: CookieOptions,
): string {
  return [
    `${SESSION_COOKIE}=${token}`,
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
