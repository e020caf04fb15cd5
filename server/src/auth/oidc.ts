import type { IncomingMessage, ServerResponse } from 'node:http';
import { type EntityManager, UniqueConstraintViolationException } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import * as client from 'openid-client';
import { recordAudit } from '../audit/audit.js';
import type { Config } from '../config/config.js';
import {
  Customer,
  type ICustomer,
  SITE_LAYOUTS,
  type SiteLayout,
} from '../customers/customer.entity.js';
import { createCustomer, EMAIL_ADDRESS } from '../customers/customer-service.js';
import type { Logger } from '../infra/logger.js';
import type { RateLimiter } from '../infra/rate-limit.js';
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
  limiter: Pick<RateLimiter, 'hit'>;
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
    const config = client
      .discovery(
        new URL(issuer),
        cfg.BACKUPS_OIDC_CLIENT_ID,
        undefined,
        client.ClientSecretBasic(cfg.BACKUPS_OIDC_CLIENT_SECRET),
        cfg.BACKUPS_OIDC_ALLOW_HTTP ? { execute: [client.allowInsecureRequests] } : undefined,
      )
      .then((found) => {
        // openid-client does not check the signature of an id token that came from the token
        // endpoint unless told to: without this, a token signed by any key would be taken.
        client.enableNonRepudiationChecks(found);
        return found;
      });
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

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A page of ours that says why the sign-in did not go on, with a way back. */
function refusalPage(res: ServerResponse, status: number, message: string, extra = {}): void {
  const body = `<!doctype html><meta charset="utf-8"><title>Sign-in refused</title><p>${escapeHtml(message)}</p><p><a href="/">Back to sign-in</a></p>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(body);
}

/**
 * Each flow started keeps a few hundred bytes in Redis for ten minutes: an address may start
 * as many as it may try passwords (BACKUPS_SIGNIN_LIMIT_PER_IP per window), no more.
 */
async function startAllowed(deps: OidcDeps, ip: string | null) {
  const { config } = deps;
  return deps.limiter.hit(
    `oidc:start:${ip ?? 'unknown'}`,
    config.BACKUPS_SIGNIN_LIMIT_PER_IP,
    config.BACKUPS_RATE_WINDOW_SECONDS,
  );
}

const unavailableMessage = (cfg: Config) =>
  `Signing in with ${cfg.BACKUPS_OIDC_NAME} is not possible right now. Please try again in a few minutes, or sign in with your password.`;

/** The provider could not be asked (down, or its discovery document is wrong). */
function providerUnavailable(deps: OidcDeps, res: ServerResponse, error: unknown): void {
  deps.logger.warn({ err: error }, 'the OpenID provider cannot be reached');
  refusalPage(res, 503, unavailableMessage(deps.config));
}

/**
 * Starts the authorization code flow with PKCE: the verifier, state and nonce are kept in
 * Redis for ten minutes under the state, which a cookie also holds; then off to the provider.
 */
export async function startOidc(
  deps: OidcDeps,
  res: ServerResponse,
  ip: string | null = null,
): Promise<void> {
  const allowed = await startAllowed(deps, ip);
  if (!allowed.allowed) {
    refusalPage(res, 429, 'Too many sign-ins from here. Please wait a minute and try again.', {
      'retry-after': String(allowed.retryAfterSeconds),
    });
    return;
  }
  let config: client.Configuration;
  try {
    config = await providerConfig(deps.config);
  } catch (error) {
    providerUnavailable(deps, res, error);
    return;
  }
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

/** Who the provider says this is: an e-mail it verified, the hosting account, its node. */
interface Assertion {
  email: string | null;
  /** The hosting account: the customer number its site is kept under (customer-<N>). */
  account: number | null;
  node: string | null;
  layout: SiteLayout | null;
}

const NODE = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const ACCOUNT = /^[1-9][0-9]{0,9}$/;

function assertionOf(cfg: Config, claims: Claims): Assertion {
  const bad = (what: string) =>
    new OidcRefusedError(
      `${cfg.BACKUPS_OIDC_NAME} sent ${what} we cannot use. Please ask support.`,
      'bad_claim',
    );
  const email =
    typeof claims.email === 'string' && claims.email_verified === true
      ? claims.email.trim().toLowerCase()
      : null;
  if (email !== null && !EMAIL_ADDRESS.test(email)) throw bad('an e-mail address');
  const rawAccount = claims[cfg.BACKUPS_OIDC_ACCOUNT_CLAIM];
  let account: number | null = null;
  if (rawAccount !== undefined && rawAccount !== null) {
    const text = typeof rawAccount === 'number' ? String(rawAccount) : rawAccount;
    if (typeof text !== 'string' || !ACCOUNT.test(text) || Number(text) > 4_294_967_295) {
      throw bad('an account number');
    }
    account = Number(text);
  }
  const rawNode = claims[cfg.BACKUPS_OIDC_NODE_CLAIM];
  if (
    rawNode !== undefined &&
    rawNode !== null &&
    (typeof rawNode !== 'string' || !NODE.test(rawNode))
  ) {
    throw bad('a server name');
  }
  const rawLayout = claims[cfg.BACKUPS_OIDC_LAYOUT_CLAIM];
  if (
    rawLayout !== undefined &&
    rawLayout !== null &&
    !(SITE_LAYOUTS as readonly unknown[]).includes(rawLayout)
  ) {
    throw bad('a site layout');
  }
  return {
    email,
    account,
    node: typeof rawNode === 'string' ? rawNode : null,
    layout: (rawLayout as SiteLayout | undefined) ?? null,
  };
}

const linkedTo = async (em: EntityManager, claims: Claims): Promise<number | null> => {
  const [linked] = await em
    .getConnection()
    .execute<{ customer_id: number }[]>(
      'select customer_id from customer_identities where issuer = ? and subject = ?',
      [claims.iss, claims.sub],
    );
  return linked ? Number(linked.customer_id) : null;
};

/**
 * A customer for a hosting account the provider names and that is not here yet: the row of
 * the site the hosting company already runs as customer-<account> on the named node, with its
 * database customer_<account> and the installation's repositories (DESIGN.md: a customer owns
 * that site; the number is the binding, as customer:add --id makes it). Refused without the
 * node or a verified e-mail address (where the notifications go), or when that address is
 * another account's.
 */
async function createFromProvider(
  deps: OidcDeps,
  em: EntityManager,
  claims: Claims,
  said: Assertion & { account: number },
): Promise<ICustomer> {
  const dashboard = deps.config.BACKUPS_OIDC_NAME;
  if (!said.node) {
    throw new OidcRefusedError(
      `${dashboard} did not say which server hosts your site, so we cannot set up your backups yet. Please ask support.`,
      'no_node',
    );
  }
  if (!said.email) {
    throw new OidcRefusedError(
      `${dashboard} did not confirm your e-mail address, which we need to set up your backups. Please ask support.`,
      'no_verified_email',
    );
  }
  if (await em.findOne(Customer, { email: said.email })) {
    throw new OidcRefusedError(
      `The e-mail address ${said.email} belongs to another backup account. Please ask support.`,
      'email_taken',
    );
  }
  try {
    const customer = await createCustomer(em, {
      id: said.account,
      email: said.email,
      name: typeof claims.name === 'string' ? claims.name : said.email,
      // Never a password that verifies: this customer signs in through the provider.
      password: null,
      host: said.node,
      siteLayout: said.layout ?? 'wordpress',
    });
    await recordAudit(em, {
      action: 'customer_created',
      actor: { kind: 'customer', id: String(customer.id) },
      customerId: customer.id,
      targetId: customer.id,
      details: { via: 'oidc', issuer: claims.iss, node: customer.host },
    });
    return customer;
  } catch (error) {
    // The same account signing in twice at once: the other sign-in made it.
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    const made = await em.fork().findOne(Customer, said.account);
    if (!made) throw error;
    return made;
  }
}

/**
 * The customer of a provider's (issuer, sub): the one linked before; else the hosting account
 * the provider names (BACKUPS_OIDC_ACCOUNT_CLAIM): that customer, or a new one for that site
 * on the node it names; else the customer with the provider's verified e-mail address; else
 * refused. The link is made for the next time.
 */
async function customerFor(deps: OidcDeps, claims: Claims): Promise<ICustomer> {
  const em = deps.em.fork();
  // customer_identities keeps up to 255 characters of each (OpenID's sub is at most 255 ASCII).
  if (claims.iss.length > 255 || claims.sub.length > 255) {
    throw new OidcRefusedError(
      `${deps.config.BACKUPS_OIDC_NAME} sent an identity we cannot use. Please ask support.`,
      'bad_claim',
    );
  }
  const linked = await linkedTo(em, claims);
  if (linked !== null) return em.findOneOrFail(Customer, linked);
  const said = assertionOf(deps.config, claims);
  let customer: ICustomer | null;
  if (said.account !== null) {
    customer = await em.findOne(Customer, said.account);
    if (customer && said.node && customer.host !== said.node) {
      throw new OidcRefusedError(
        `${deps.config.BACKUPS_OIDC_NAME} places your site on another server than we know. Please ask support.`,
        'node_mismatch',
      );
    }
    customer ??= await createFromProvider(deps, em, claims, { ...said, account: said.account });
  } else {
    if (!said.email) {
      throw new OidcRefusedError(
        `${deps.config.BACKUPS_OIDC_NAME} did not confirm your e-mail address, so we cannot tell which site is yours. Sign in with your password, or ask support.`,
        'no_verified_email',
      );
    }
    customer = await em.findOne(Customer, { email: said.email });
    if (!customer) {
      throw new OidcRefusedError(
        `There is no backup account for ${said.email} yet. Ask support to set one up.`,
        'unknown_customer',
      );
    }
  }
  // Two first sign-ins at once: one link is kept, and both use it.
  await em
    .getConnection()
    .execute(
      'insert ignore into customer_identities (issuer, subject, customer_id, created_at) values (?, ?, ?, ?)',
      [claims.iss, claims.sub, customer.id, new Date()],
    );
  const kept = await linkedTo(em, claims);
  return kept === customer.id ? customer : em.findOneOrFail(Customer, kept ?? customer.id);
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
    const config = await providerConfig(deps.config).catch((error: unknown) => {
      deps.logger.warn({ err: error }, 'the OpenID provider cannot be reached');
      throw new OidcRefusedError(unavailableMessage(deps.config), 'provider_unavailable');
    });
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
    refusalPage(res, 400, error.message, { 'set-cookie': clearFlow });
  }
}
