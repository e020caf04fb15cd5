import type { EntityManager } from '@mikro-orm/mariadb';
import { nullableUtcDatetime } from '../db/raw.js';
import { ApiToken } from './api-token.entity.js';
import { sha256Hex } from './credentials.js';
import { Session } from './session.entity.js';

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

/** Whether the viewer's session or token is still live (checked on every subscription event). */
export async function viewerStillValid(em: EntityManager, viewer: Viewer): Promise<boolean> {
  const fork = em.fork();
  if (viewer.kind === 'customer') {
    const count = await fork.count(Session, {
      id: viewer.sessionId,
      expiresAt: { $gt: new Date() },
    });
    return count > 0;
  }
  return (await fork.count(ApiToken, { id: viewer.tokenId, revokedAt: null })) > 0;
}
