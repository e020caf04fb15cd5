import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/mariadb';
import { hashPassword } from '../auth/passwords.js';
import { Customer, type ICustomer, type SiteLayout } from './customer.entity.js';

export interface NewCustomer {
  /**
   * The customer's number, when the hosting company's platform gave it already: the site is
   * kept as customer-<id> and its database as customer_<id>, so the number binds the customer
   * to their site. Without it the next free number is taken.
   */
  id?: number;
  email: string;
  name: string;
  /** null: no password sign-in (a customer of the single sign-on). */
  password: string | null;
  host: string;
  siteLayout?: SiteLayout;
}

export class CustomerInputError extends Error {}

export const EMAIL_ADDRESS = /^[^\s@]{1,64}@[^\s@]{1,189}$/;

export async function createCustomer(em: EntityManager, input: NewCustomer): Promise<ICustomer> {
  const email = input.email.trim().toLowerCase();
  if (!EMAIL_ADDRESS.test(email)) {
    throw new CustomerInputError(`not an email address: ${input.email}`);
  }
  if (input.password !== null && input.password.length < 10) {
    throw new CustomerInputError('the password needs 10 characters or more');
  }
  if (
    input.id !== undefined &&
    !(Number.isInteger(input.id) && input.id > 0 && input.id < 2 ** 32)
  ) {
    throw new CustomerInputError(`not a customer number: ${input.id}`);
  }
  const fork = em.fork();
  const customer = fork.create(Customer, {
    ...(input.id === undefined ? {} : { id: input.id }),
    email,
    name: input.name.trim().slice(0, 200) || email,
    // No password: the hash of 32 random bytes nobody keeps. A real hash, so a password tried
    // against this customer takes as long as against any other (no hint who has no password).
    passwordHash: await hashPassword(input.password ?? randomBytes(32).toString('base64')),
    host: input.host,
    siteLayout: input.siteLayout ?? 'wordpress',
  });
  await fork.flush();
  return customer;
}

export async function setCustomerPassword(
  em: EntityManager,
  customerId: number,
  password: string,
): Promise<void> {
  const fork = em.fork();
  const customer = await fork.findOneOrFail(Customer, customerId);
  customer.passwordHash = await hashPassword(password);
  await fork.flush();
}
