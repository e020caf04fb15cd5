import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/mariadb';
import { Customer, type ICustomer } from '../../src/customers/customer.entity.js';

export async function buildCustomer(
  em: EntityManager,
  overrides: Partial<
    Pick<ICustomer, 'email' | 'name' | 'host' | 'siteLayout' | 'passwordHash'>
  > = {},
): Promise<ICustomer> {
  const fork = em.fork();
  const tag = randomBytes(4).toString('hex');
  const customer = fork.create(Customer, {
    email: overrides.email ?? `customer-${tag}@example.test`,
    name: overrides.name ?? `Customer ${tag}`,
    passwordHash: overrides.passwordHash ?? 'not-a-real-hash',
    host: overrides.host ?? 'local',
    siteLayout: overrides.siteLayout ?? 'wordpress',
  });
  await fork.flush();
  return customer;
}
