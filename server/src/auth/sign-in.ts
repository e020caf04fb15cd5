import type { EntityManager } from '@mikro-orm/mariadb';
import { recordAudit } from '../audit/audit.js';
import type { Config } from '../config/config.js';
import { Customer, type ICustomer } from '../customers/customer.entity.js';
import { InvalidInputError, RateLimitedError } from '../graphql/errors.js';
import type { RateLimiter } from '../infra/rate-limit.js';
import { InvalidCredentialsError } from './auth-errors.js';
import { sha256Hex } from './credentials.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { createSession } from './sessions.js';

export interface SignInDeps {
  em: EntityManager;
  limiter: RateLimiter;
  config: Config;
}

export interface SignInInput {
  email: string;
  password: string;
  ip: string | null;
  userAgent: string | null;
}

let dummyHash: Promise<string> | undefined;

/** A hash to verify against when the email is unknown, so both cases take the same time. */
export function unknownUserHash(): Promise<string> {
  dummyHash ??= hashPassword('not the password of anyone');
  return dummyHash;
}

/** The sign-in limits, per address and email and per address (customers and staff alike). */
export async function checkRate(deps: SignInDeps, ip: string | null, email: string): Promise<void> {
  const window = deps.config.BACKUPS_RATE_WINDOW_SECONDS;
  const address = ip ?? 'unknown';
  const decisions = await Promise.all([
    deps.limiter.hit(
      `signin:ip-email:${address}:${sha256Hex(email)}`,
      deps.config.BACKUPS_SIGNIN_LIMIT_PER_EMAIL,
      window,
    ),
    deps.limiter.hit(`signin:ip:${address}`, deps.config.BACKUPS_SIGNIN_LIMIT_PER_IP, window),
  ]);
  const waits = decisions.flatMap((d) => (d.allowed ? [] : [d.retryAfterSeconds]));
  if (waits.length > 0) throw new RateLimitedError(Math.max(...waits));
}

export type AccountKind = 'customer' | 'staff';

/**
 * Checks an email and password against the account `find` returns, for customers and staff
 * alike: the same input limits, rate limits, timing (an unknown email verifies a dummy hash) and
 * audit of every failure. Returns the account; the caller opens its session.
 */
export async function verifySignIn<A extends { id: number; passwordHash?: string | null }>(
  deps: SignInDeps,
  input: SignInInput,
  kind: AccountKind,
  find: (email: string) => Promise<A | null>,
): Promise<A> {
  const email = input.email.trim().toLowerCase();
  if (email.length === 0 || email.length > 254 || input.password.length > 1024) {
    throw new InvalidInputError('Enter your email address and password.', 'email');
  }
  const failed = (reason: string, account: A | null) =>
    recordAudit(deps.em, {
      action: 'sign_in_failed',
      actor: { kind: 'anonymous', id: null },
      customerId: kind === 'customer' ? (account?.id ?? null) : null,
      ip: input.ip,
      details: { email, ...(kind === 'staff' ? { staff: true } : {}), reason },
    });
  try {
    await checkRate(deps, input.ip, kind === 'staff' ? `staff:${email}` : email);
  } catch (error) {
    await failed('rate_limited', null);
    throw error;
  }
  const account = await find(email);
  const valid = await verifyPassword(
    account?.passwordHash ?? (await unknownUserHash()),
    input.password,
  );
  if (!account || !valid) {
    await failed(account ? 'wrong_password' : 'unknown_email', account);
    throw new InvalidCredentialsError();
  }
  return account;
}

/**
 * Checks a customer's email and password and opens a session. Every attempt, good or bad, is
 * audited; attempts are rate-limited per address and email, and per address.
 */
export async function signIn(
  deps: SignInDeps,
  input: SignInInput,
): Promise<{ customer: ICustomer; token: string }> {
  const customer = await verifySignIn(deps, input, 'customer', (email) =>
    deps.em.fork().findOne(Customer, { email }, { populate: ['passwordHash'] }),
  );
  const { token } = await createSession(deps.em, {
    customerId: customer.id,
    days: deps.config.BACKUPS_SESSION_DAYS,
    ip: input.ip,
    userAgent: input.userAgent,
  });
  await recordAudit(deps.em, {
    action: 'sign_in',
    actor: { kind: 'customer', id: String(customer.id) },
    customerId: customer.id,
    ip: input.ip,
  });
  return { customer, token };
}
