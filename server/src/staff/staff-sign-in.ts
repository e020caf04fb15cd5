import { recordAudit } from '../audit/audit.js';
import { InvalidCredentialsError } from '../auth/auth-errors.js';
import { hashPassword, verifyPassword } from '../auth/passwords.js';
import { createSession } from '../auth/sessions.js';
import { checkRate, type SignInDeps, type SignInInput, unknownUserHash } from '../auth/sign-in.js';
import { InvalidInputError } from '../graphql/errors.js';
import { type IStaffAccount, StaffAccount } from './staff-account.entity.js';

/**
 * A support staff member's sign-in: the same limits, timing and audit as a customer's, and a
 * session with rights over every customer.
 */
export async function staffSignIn(
  deps: SignInDeps,
  input: SignInInput,
): Promise<{ staff: IStaffAccount; token: string }> {
  const email = input.email.trim().toLowerCase();
  if (email.length === 0 || email.length > 254 || input.password.length > 1024) {
    throw new InvalidInputError('Enter your email address and password.', 'email');
  }
  await checkRate(deps, input.ip, `staff:${email}`);
  const staff = await deps.em
    .fork()
    .findOne(StaffAccount, { email }, { populate: ['passwordHash'] });
  const valid = await verifyPassword(
    staff?.passwordHash ?? (await unknownUserHash()),
    input.password,
  );
  if (!staff || !valid) {
    await recordAudit(deps.em, {
      action: 'sign_in_failed',
      actor: { kind: 'anonymous', id: null },
      ip: input.ip,
      details: { email, staff: true, reason: staff ? 'wrong_password' : 'unknown_email' },
    });
    throw new InvalidCredentialsError();
  }
  const { token } = await createSession(deps.em, {
    staffId: staff.id,
    days: 1,
    ip: input.ip,
    userAgent: input.userAgent,
  });
  await recordAudit(deps.em, {
    action: 'sign_in',
    actor: { kind: 'staff', id: String(staff.id) },
    ip: input.ip,
  });
  return { staff, token };
}

/** A new staff account (the CLI's staff:add). */
export async function addStaffAccount(
  em: SignInDeps['em'],
  input: { email: string; name: string; password: string },
): Promise<IStaffAccount> {
  const fork = em.fork();
  const staff = fork.create(StaffAccount, {
    email: input.email.trim().toLowerCase(),
    name: input.name.trim(),
    passwordHash: await hashPassword(input.password),
  });
  await fork.flush();
  return staff;
}
