import type { EntityManager } from '@mikro-orm/mariadb';
import { nullableUtcDatetime } from '../db/raw.js';
import { ApiToken } from './api-token.entity.js';
import { sha256Hex } from './credentials.js';

/** Who is asking: a signed-in customer (cookie), a customer's API token, or an admin token. */
export type Viewer =
  | { kind: 'customer'; customerId: number; sessionId: string }
  | { kind: 'token'; customerId: number; tokenId: number }
  | { kind: 'admin'; tokenId: number };

export interface Actor {
  kind: 'customer' | 'token' | 'admin' | 'operator' | 'anonymous';
  id: string | null;
}

export function actorOf(viewer: Viewer | null): Actor {
  if (!viewer) return { kind: 'anonymous', id: null };
  if (viewer.kind === 'customer') return { kind: 'customer', id: String(viewer.customerId) };
  return { kind: viewer.kind, id: String(viewer.tokenId) };
}

/** The customer the viewer is bound to; null for an admin token. */
export function viewerCustomerId(viewer: Viewer | null): number | null {
  return viewer && viewer.kind !== 'admin' ? viewer.customerId : null;
}

export function mayActFor(viewer: Viewer | null, customerId: number): boolean {
  if (!viewer) return false;
  return viewer.kind === 'admin' || viewer.customerId === customerId;
}

const LAST_USED_PRECISION_MS = 60_000;

interface TokenRow {
  id: number;
  customer_id: number | null;
  is_admin: number | boolean;
  last_used_at: string | Date | null;
}

/** The viewer of a bearer token; null when the token is unknown or revoked. */
export async function viewerFromBearer(em: EntityManager, token: string): Promise<Viewer | null> {
  // Every integrator request comes through here: one SQL string, no query builder.
  const [row] = await em
    .getConnection()
    .execute<TokenRow[]>(
      'select id, customer_id, is_admin, last_used_at from api_tokens where token_hash = ? and revoked_at is null limit 1',
      [sha256Hex(token)],
    );
  if (!row) return null;
  const id = Number(row.id);
  const now = Date.now();
  const lastUsed = nullableUtcDatetime(row.last_used_at);
  if (!lastUsed || now - lastUsed.getTime() > LAST_USED_PRECISION_MS) {
    await em.fork().nativeUpdate(ApiToken, { id }, { lastUsedAt: new Date(now) });
  }
  if (row.is_admin === true || Number(row.is_admin) === 1) return { kind: 'admin', tokenId: id };
  if (row.customer_id === null) return null;
  return { kind: 'token', customerId: Number(row.customer_id), tokenId: id };
}

/** The viewer of a session cookie's token; null when there is no such live session. */
export async function viewerFromSession(em: EntityManager, token: string): Promise<Viewer | null> {
  const sessionId = sha256Hex(token);
  const [row] = await em
    .getConnection()
    .execute<{ customer_id: number }[]>(
      'select customer_id from sessions where id = ? and expires_at > ? limit 1',
      [sessionId, new Date()],
    );
  if (!row) return null;
  return { kind: 'customer', customerId: Number(row.customer_id), sessionId };
}

/** A viewer's credential (its session, or its token) as a key of liveCredentials' answer. */
export function credentialKey(viewer: Viewer): string {
  return viewer.kind === 'customer' ? `s:${viewer.sessionId}` : `t:${viewer.tokenId}`;
}

/**
 * Which of these viewers' sessions and tokens are still live (as credentialKey): one query per
 * kind, however many viewers (every subscriber of a job, on each event). Plain SQL: a hot path.
 */
export async function liveCredentials(
  em: EntityManager,
  viewers: Iterable<Viewer>,
): Promise<Set<string>> {
  const sessions = new Set<string>();
  const tokens = new Set<number>();
  for (const viewer of viewers) {
    if (viewer.kind === 'customer') sessions.add(viewer.sessionId);
    else tokens.add(viewer.tokenId);
  }
  const connection = em.getConnection();
  const marks = (count: number) => Array.from({ length: count }, () => '?').join(', ');
  const [liveSessions, liveTokens] = await Promise.all([
    sessions.size === 0
      ? []
      : connection.execute<{ id: string }[]>(
          `select id from sessions where id in (${marks(sessions.size)}) and expires_at > ?`,
          [...sessions, new Date()],
        ),
    tokens.size === 0
      ? []
      : connection.execute<{ id: number }[]>(
          `select id from api_tokens where id in (${marks(tokens.size)}) and revoked_at is null`,
          [...tokens],
        ),
  ]);
  const live = new Set<string>();
  for (const row of liveSessions) live.add(`s:${row.id}`);
  for (const row of liveTokens) live.add(`t:${Number(row.id)}`);
  return live;
}

/** Whether the viewer's session or token is still live (a socket's operations, on start). */
export async function viewerStillValid(em: EntityManager, viewer: Viewer): Promise<boolean> {
  return (await liveCredentials(em, [viewer])).has(credentialKey(viewer));
}
