import { recordAudit } from '../audit/audit.js';
import { hashPassword } from '../auth/passwords.js';
import { createSession } from '../auth/sessions.js';
import { type SignInDeps, type SignInInput, verifySignIn } from '../auth/sign-in.js';
import { type IStaffAccount, StaffAccount } from './staff-account.entity.js';

/**
 * A support staff member's sign-in: the same limits, timing and audit as a customer's, and a
 * session with rights over every customer.
 */
export async function staffSignIn(
  deps: SignInDeps,
  input: SignInInput,
): Promise<{ staff: IStaffAccount; token: string }> {
  const staff = await verifySignIn(deps, input, 'staff', (email) =>
    deps.em.fork().findOne(StaffAccount, { email }, { populate: ['passwordHash'] }),
  );
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
