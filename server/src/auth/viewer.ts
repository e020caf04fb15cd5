import type { EntityManager } from '@mikro-orm/mariadb';
import { nullableUtcDatetime, utcDatetime } from '../db/raw.js';
import { ApiToken } from './api-token.entity.js';
import { sha256Hex } from './credentials.js';

/**
 * Who is asking: a signed-in customer (cookie), a customer's API token, an admin token, or a
 * signed-in member of the support staff (cookie; the same rights as an admin token).
 */
export type Viewer =
  | { kind: 'customer'; customerId: number; sessionId: string; expiresAt: Date }
  | { kind: 'token'; customerId: number; tokenId: number }
  | { kind: 'admin'; tokenId: number }
  | { kind: 'staff'; staffId: number; sessionId: string; expiresAt: Date };

/** A viewer signed in with a session cookie. */
export type SessionViewer = Extract<Viewer, { sessionId: string }>;

export interface Actor {
  kind: 'customer' | 'token' | 'admin' | 'staff' | 'operator' | 'anonymous';
  id: string | null;
}

export function actorOf(viewer: Viewer | null): Actor {
  if (!viewer) return { kind: 'anonymous', id: null };
  if (viewer.kind === 'customer') return { kind: 'customer', id: String(viewer.customerId) };
  if (viewer.kind === 'staff') return { kind: 'staff', id: String(viewer.staffId) };
  return { kind: viewer.kind, id: String(viewer.tokenId) };
}

/** Rights over every customer: an admin token, or a support staff session. */
export function hasAdminRights(viewer: Viewer | null | undefined): boolean {
  return viewer?.kind === 'admin' || viewer?.kind === 'staff';
}

export function isSessionViewer(viewer: Viewer): viewer is SessionViewer {
  return viewer.kind === 'customer' || viewer.kind === 'staff';
}

/** The customer the viewer is bound to; null for an admin token or a staff member. */
export function viewerCustomerId(viewer: Viewer | null): number | null {
  return viewer && (viewer.kind === 'customer' || viewer.kind === 'token')
    ? viewer.customerId
    : null;
}

export function mayActFor(viewer: Viewer | null, customerId: number): boolean {
  if (!viewer) return false;
  return hasAdminRights(viewer) || viewerCustomerId(viewer) === customerId;
}

/** last_used_at is written at most once a minute per token (the token list shows minutes). */
export const LAST_USED_PRECISION_MS = 60_000;

/** The viewer of an API token. */
export type BearerViewer = Extract<Viewer, { kind: 'token' | 'admin' }>;

interface TokenRow {
  id: number;
  customer_id: number | null;
  is_admin: number | boolean;
  last_used_at: string | Date | null;
}

/**
 * The live token with this SHA-256 and when it was last used (ms since the epoch), or null
 * when there is no such live token. One SQL string, no query builder.
 */
export async function lookUpBearer(
  em: EntityManager,
  tokenHash: string,
): Promise<{ viewer: BearerViewer; lastUsedAt: number | null } | null> {
  const [row] = await em
    .getConnection()
    .execute<TokenRow[]>(
      'select id, customer_id, is_admin, last_used_at from api_tokens where token_hash = ? and revoked_at is null limit 1',
      [tokenHash],
    );
  if (!row) return null;
  const tokenId = Number(row.id);
  const lastUsedAt = nullableUtcDatetime(row.last_used_at)?.getTime() ?? null;
  if (row.is_admin === true || Number(row.is_admin) === 1) {
    return { viewer: { kind: 'admin', tokenId }, lastUsedAt };
  }
  if (row.customer_id === null) return null;
  return { viewer: { kind: 'token', customerId: Number(row.customer_id), tokenId }, lastUsedAt };
}

/** Records a token's use (for the customer's token list). */
export async function recordTokenUse(
  em: EntityManager,
  tokenId: number,
  at: number,
): Promise<void> {
  await em.fork().nativeUpdate(ApiToken, { id: tokenId }, { lastUsedAt: new Date(at) });
}

/** The viewer of a bearer token, read now; null when the token is unknown or revoked. */
export async function viewerFromBearer(em: EntityManager, token: string): Promise<Viewer | null> {
  const found = await lookUpBearer(em, sha256Hex(token));
  if (!found) return null;
  const now = Date.now();
  if (found.lastUsedAt === null || now - found.lastUsedAt > LAST_USED_PRECISION_MS) {
    await recordTokenUse(em, found.viewer.tokenId, now);
  }
  return found.viewer;
}

/** The viewer of a session cookie's token; null when there is no such live session. */
export async function viewerFromSession(em: EntityManager, token: string): Promise<Viewer | null> {
  const sessionId = sha256Hex(token);
  const [row] = await em
    .getConnection()
    .execute<{ customer_id: number | null; staff_id: number | null; expires_at: string | Date }[]>(
      'select customer_id, staff_id, expires_at from sessions where id = ? and expires_at > ? limit 1',
      [sessionId, new Date()],
    );
  if (!row) return null;
  const expiresAt = utcDatetime(row.expires_at);
  if (row.staff_id !== null) {
    return { kind: 'staff', staffId: Number(row.staff_id), sessionId, expiresAt };
  }
  if (row.customer_id === null) return null;
  return { kind: 'customer', customerId: Number(row.customer_id), sessionId, expiresAt };
}

/** A session's credential key (see credentialKey). */
export function sessionCredential(sessionId: string): string {
  return `s:${sessionId}`;
}

/** A token's credential key (see credentialKey). */
export function tokenCredential(tokenId: number): string {
  return `t:${tokenId}`;
}

/** A viewer's credential (its session, or its token) as a key of liveCredentials' answer. */
export function credentialKey(viewer: Viewer): string {
  return isSessionViewer(viewer)
    ? sessionCredential(viewer.sessionId)
    : tokenCredential(viewer.tokenId);
}

/** A live credential: a session ends at its expiry, a token when it is revoked (null). */
export interface LiveCredential {
  expiresAt: Date | null;
}

/**
 * Which of these viewers' sessions and tokens are still live, by credentialKey: one query per
 * kind, however many viewers (every credential a process's subscriptions hold, at each
 * periodic check of auth/credential-watch.ts). Plain SQL.
 */
export async function liveCredentials(
  em: EntityManager,
  viewers: Iterable<Viewer>,
): Promise<Map<string, LiveCredential>> {
  const sessions = new Set<string>();
  const tokens = new Set<number>();
  for (const viewer of viewers) {
    if (isSessionViewer(viewer)) sessions.add(viewer.sessionId);
    else tokens.add(viewer.tokenId);
  }
  const connection = em.getConnection();
  const marks = (count: number) => Array.from({ length: count }, () => '?').join(', ');
  const [liveSessions, liveTokens] = await Promise.all([
    sessions.size === 0
      ? []
      : connection.execute<{ id: string; expires_at: string | Date }[]>(
          `select id, expires_at from sessions where id in (${marks(sessions.size)}) and expires_at > ?`,
          [...sessions, new Date()],
        ),
    tokens.size === 0
      ? []
      : connection.execute<{ id: number }[]>(
          `select id from api_tokens where id in (${marks(tokens.size)}) and revoked_at is null`,
          [...tokens],
        ),
  ]);
  const live = new Map<string, LiveCredential>();
  for (const row of liveSessions) {
    live.set(sessionCredential(row.id), { expiresAt: utcDatetime(row.expires_at) });
  }
  for (const row of liveTokens) live.set(tokenCredential(Number(row.id)), { expiresAt: null });
  return live;
}

/** Whether the viewer's session or token is still live (a socket's operations, on start). */
export async function viewerStillValid(em: EntityManager, viewer: Viewer): Promise<boolean> {
  return (await liveCredentials(em, [viewer])).has(credentialKey(viewer));
}
