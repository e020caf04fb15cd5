import type { EntityManager } from '@mikro-orm/mariadb';
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

/** The viewer of a bearer token; null when the token is unknown or revoked. */
export async function viewerFromBearer(em: EntityManager, token: string): Promise<Viewer | null> {
  const row = await em.fork().findOne(ApiToken, { tokenHash: sha256Hex(token), revokedAt: null });
  if (!row) return null;
  const now = Date.now();
  if (!row.lastUsedAt || now - row.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
    await em.fork().nativeUpdate(ApiToken, { id: row.id }, { lastUsedAt: new Date(now) });
  }
  if (row.isAdmin) return { kind: 'admin', tokenId: row.id };
  if (!row.customer) return null;
  return { kind: 'token', customerId: row.customer.id, tokenId: row.id };
}

/** The viewer of a session cookie's token; null when there is no such live session. */
export async function viewerFromSession(em: EntityManager, token: string): Promise<Viewer | null> {
  const sessionId = sha256Hex(token);
  const row = await em.fork().findOne(Session, { id: sessionId, expiresAt: { $gt: new Date() } });
  if (!row) return null;
  return { kind: 'customer', customerId: row.customer.id, sessionId };
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
