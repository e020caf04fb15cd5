import type { EntityManager } from '@mikro-orm/mariadb';
import { InvalidInputError } from '../graphql/errors.js';
import { ApiToken, type IApiToken } from './api-token.entity.js';
import { announceCredentialEnded, type CredentialEvents } from './credential-events.js';
import { isPrintable, randomSecret, sha256Hex } from './credentials.js';

export const TOKEN_PREFIX = 'cbk_';
const SHOWN_PREFIX_LENGTH = 12;

export interface NewApiToken {
  /** The secret, shown once: never stored. */
  token: string;
  apiToken: IApiToken;
}

/** A token's name: trimmed, 1..100 printable characters. */
export function validTokenName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > 100 || !isPrintable(trimmed)) {
    throw new InvalidInputError('Give the token a name of 1 to 100 printable characters.', 'name');
  }
  return trimmed;
}

async function insertToken(
  em: EntityManager,
  input: { name: string; customerId: number | null; isAdmin: boolean },
): Promise<NewApiToken> {
  const token = `${TOKEN_PREFIX}${randomSecret()}`;
  const fork = em.fork();
  const apiToken = fork.create(ApiToken, {
    name: input.name,
    tokenHash: sha256Hex(token),
    prefix: token.slice(0, SHOWN_PREFIX_LENGTH),
    customer: input.customerId,
    isAdmin: input.isAdmin,
  });
  await fork.flush();
  return { token, apiToken };
}

/** A customer's token for integrations: acts for that customer only. */
export function createCustomerApiToken(
  em: EntityManager,
  customerId: number,
  name: string,
): Promise<NewApiToken> {
  return insertToken(em, { name: validTokenName(name), customerId, isAdmin: false });
}

/** An admin token (made by the ops CLI): may act for any customer through `customerId`. */
export function createAdminToken(em: EntityManager, name: string): Promise<NewApiToken> {
  return insertToken(em, { name: validTokenName(name), customerId: null, isAdmin: true });
}

/**
 * Marks a live token revoked and announces it, so that every api process ends the token's
 * subscriptions at once (auth/credential-watch.ts); false when no such live token matched.
 */
async function revoke(
  em: EntityManager,
  where: { id: number; customer?: number },
  events: CredentialEvents,
): Promise<boolean> {
  const changed = await em
    .fork()
    .nativeUpdate(ApiToken, { ...where, revokedAt: null }, { revokedAt: new Date() });
  if (changed === 0) return false;
  await announceCredentialEnded(events, { token: where.id });
  return true;
}

/** Revokes one of the customer's own live tokens; false when there is no such token. */
export function revokeCustomerApiToken(
  em: EntityManager,
  customerId: number,
  tokenId: number,
  events: CredentialEvents,
): Promise<boolean> {
  return revoke(em, { id: tokenId, customer: customerId }, events);
}

/** Revokes any live token, an admin's or a customer's (the ops CLI); false when there is none. */
export function revokeApiToken(
  em: EntityManager,
  tokenId: number,
  events: CredentialEvents,
): Promise<boolean> {
  return revoke(em, { id: tokenId }, events);
}

export function listCustomerApiTokens(em: EntityManager, customerId: number): Promise<IApiToken[]> {
  return em
    .fork()
    .find(ApiToken, { customer: customerId, revokedAt: null }, { orderBy: { id: 'desc' } });
}
