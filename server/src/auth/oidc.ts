import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntityManager } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import * as client from 'openid-client';
import { recordAudit } from '../audit/audit.js';
import type { Config } from '../config/config.js';
import { Customer, type ICustomer } from '../customers/customer.entity.js';
import type { Logger } from '../infra/logger.js';
import { createSession, secureCookies, sessionCookie } from './sessions.js';

/** The paths of the sign-in through the hosting company's dashboard (an OpenID provider). */
export const OIDC_START_PATH = '/auth/oidc/start';
export const OIDC_CALLBACK_PATH = '/auth/oidc/callback';
/** Binds the flow to the browser that started it (a callback from another browser is refused). */
const FLOW_COOKIE = 'backups_oidc_flow';
const FLOW_SECONDS = 600;

export interface OidcDeps {
  config: Config;
  em: EntityManager;
  redis: Redis;
  logger: Logger;
}

/** Why a sign-in through the provider was refused, in words for the customer. */
export class OidcRefusedError extends Error {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'OidcRefusedError';
  }
}

let discovered: { issuer: string; config: Promise<client.Configuration> } | undefined;

function providerConfig(cfg: Config): Promise<client.Configuration> {
  const issuer = cfg.BACKUPS_OIDC_ISSUER;
  if (!issuer) throw new Error('no OpenID provider is configured');
  if (discovered?.issuer !== issuer) {
    const config = client.discovery(
      new URL(issuer),
      cfg.BACKUPS_OIDC_CLIENT_ID,
      undefined,
      client.ClientSecretBasic(cfg.BACKUPS_OIDC_CLIENT_SECRET),
      cfg.BACKUPS_OIDC_ALLOW_HTTP ? { execute: [client.allowInsecureRequests] } : undefined,
    );
    // A provider down at the first sign-in is asked again at the next one.
    config.catch(() => {
      discovered = undefined;
    });
    discovered = { issuer, config };
  }
  return discovered.config;
}

const redirectUri = (cfg: Config) => new URL(OIDC_CALLBACK_PATH, cfg.BACKUPS_PUBLIC_URL).toString();
const flowKey = (cfg: Config, flow: string) => `${cfg.BACKUPS_REDIS_PREFIX}:oidc:${flow}`;

function cookieValue(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return null;
}

function flowCookie(value: string, maxAge: number, cfg: Config): string {
  const secure = secureCookies(cfg.BACKUPS_PUBLIC_URL);
  return [
    `${FLOW_COOKIE}=${value}`,
    'HttpOnly',
    'SameSite=Lax',
    `Path=${OIDC_CALLBACK_PATH}`,
    `Max-Age=${maxAge}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

/**
 * Starts the authorization code flow with PKCE: the verifier, state and nonce are kept in
 * Redis for ten minutes under the state, which a cookie also holds; then off to the provider.
 */
export async function startOidc(deps: OidcDeps, res: ServerResponse): Promise<void> {
  const config = await providerConfig(deps.config);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  await deps.redis.set(
    flowKey(deps.config, state),
    JSON.stringify({ verifier, nonce }),
    'EX',
    FLOW_SECONDS,
  );
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri(deps.config),
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  res.writeHead(302, {
    location: url.toString(),
    'set-cookie': flowCookie(state, FLOW_SECONDS, deps.config),
    'cache-control': 'no-store',
  });
  res.end();
}

interface Claims {
  iss: string;
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  name?: unknown;
  [claim: string]: unknown;
}

/**
 * The customer of a provider's (issuer, sub): the one linked before; else the customer with
 * the provider's verified e-mail address, linked now; else a new customer when the provider
 * names their node; else refused.
 */
async function customerFor(deps: OidcDeps, claims: Claims): Promise<ICustomer> {
  const em = deps.em.fork();
  const connection = em.getConnection();
  const [linked] = await connection.execute<{ customer_id: number }[]>(
    'select customer_id from customer_identities where issuer = ? and subject = ?',
    [claims.iss, claims.sub],
  );
  if (linked) return em.findOneOrFail(Customer, Number(linked.customer_id));
  const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : null;
  if (!email || claims.email_verified !== true) {
    throw new OidcRefusedError(
      `${deps.config.BACKUPS_OIDC_NAME} did not confirm your e-mail address, so we cannot tell which site is yours. Sign in with your password, or ask support.`,
      'no_verified_email',
    );
  }
  let customer = await em.findOne(Customer, { email });
  if (!customer) {
    const node = claims[deps.config.BACKUPS_OIDC_NODE_CLAIM];
    if (typeof node !== 'string' || !/^[a-z0-9][a-z0-9.-]{0,62}$/.test(node)) {
      throw new OidcRefusedError(
        `There is no backup account for ${email} yet. Ask support to set one up.`,
        'unknown_customer',
      );
    }
    customer = em.create(Customer, {
      email,
      name: typeof claims.name === 'string' ? claims.name.slice(0, 200) : email,
      // Never a password that verifies: this customer signs in through the provider.
      passwordHash: '!sso-only',
      host: node,
    });
    await em.flush();
  }
  await connection.execute(
    'insert into customer_identities (issuer, subject, customer_id, created_at) values (?, ?, ?, ?)',
    [claims.iss, claims.sub, customer.id, new Date()],
  );
  return customer;
}

/**
 * The provider sends the browser back here. The state must be the one this browser's cookie
 * holds and is used once (Redis GETDEL); openid-client checks the code with the PKCE verifier,
 * the id token's signature (the provider's keys), issuer, audience, expiry and nonce. Only then
 * a session is made; any failure leaves none and says why.
 */
export async function finishOidc(
  deps: OidcDeps,
  req: IncomingMessage,
  res: ServerResponse,
  ip: string | null,
): Promise<void> {
  const current = new URL(req.url ?? OIDC_CALLBACK_PATH, deps.config.BACKUPS_PUBLIC_URL);
  const state = current.searchParams.get('state') ?? '';
  const clearFlow = flowCookie('', 0, deps.config);
  try {
    if (!state || cookieValue(req, FLOW_COOKIE) !== state) {
      throw new OidcRefusedError(
        'This sign-in was not started in this browser. Please try again.',
        'state_mismatch',
      );
    }
    const stored = await deps.redis.getdel(flowKey(deps.config, state));
    if (!stored) {
      throw new OidcRefusedError('This sign-in has expired. Please try again.', 'state_unknown');
    }
    const { verifier, nonce } = JSON.parse(stored) as { verifier: string; nonce: string };
    const config = await providerConfig(deps.config);
    let claims: Claims | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims() as Claims | undefined;
    } catch (error) {
      deps.logger.warn({ err: error }, 'OpenID sign-in refused');
      throw new OidcRefusedError(
        `${deps.config.BACKUPS_OIDC_NAME} did not confirm this sign-in. Please try again.`,
        'token_refused',
      );
    }
    if (!claims) throw new OidcRefusedError('No identity came back.', 'no_id_token');
    const customer = await customerFor(deps, claims);
    const { token } = await createSession(deps.em, {
      customerId: customer.id,
      days: deps.config.BACKUPS_SESSION_DAYS,
      ip,
      userAgent: req.headers['user-agent'] ?? null,
    });
    await recordAudit(deps.em, {
      action: 'sign_in',
      actor: { kind: 'customer', id: String(customer.id) },
      customerId: customer.id,
      ip,
      details: { via: 'oidc', issuer: claims.iss },
    });
    const secure = secureCookies(deps.config.BACKUPS_PUBLIC_URL);
    res.writeHead(302, {
      location: '/',
      'set-cookie': [
        sessionCookie(token, deps.config.BACKUPS_SESSION_DAYS * 86_400, { secure }),
        clearFlow,
      ],
      'cache-control': 'no-store',
    });
    res.end();
  } catch (error) {
    if (!(error instanceof OidcRefusedError)) throw error;
    await recordAudit(deps.em, {
      action: 'sign_in_failed',
      actor: { kind: 'anonymous', id: null },
      ip,
      details: { via: 'oidc', reason: error.reason },
    });
    const body = `<!doctype html><meta charset="utf-8"><title>Sign-in refused</title><p>${error.message.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</p><p><a href="/">Back to sign-in</a></p>`;
    res.writeHead(400, {
      'content-type': 'text/html; charset=utf-8',
      'set-cookie': clearFlow,
      'cache-control': 'no-store',
    });
    res.end(body);
  }
}
