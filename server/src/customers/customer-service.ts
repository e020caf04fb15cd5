import type { EntityManager } from '@mikro-orm/mariadb';
import { hashPassword } from '../auth/passwords.js';
import { Customer, type ICustomer, type SiteLayout } from './customer.entity.js';

export interface NewCustomer {
  email: string;
  name: string;
  password: string;
  host: string;
  siteLayout?: SiteLayout;
}

export class CustomerInputError extends Error {}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}$/;

export async function createCustomer(em: EntityManager, input: NewCustomer): Promise<ICustomer> {
  const email = input.email.trim().toLowerCase();
  if (!EMAIL.test(email)) throw new CustomerInputError(`not an email address: ${input.email}`);
  if (input.password.length < 10)
    throw new CustomerInputError('the password needs 10 characters or more');
  const fork = em.fork();
  const customer = fork.create(Customer, {
    email,
    name: input.name.trim() || email,
    passwordHash: await hashPassword(input.password),
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
