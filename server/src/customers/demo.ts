import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EntityManager } from '@mikro-orm/mariadb';
import type { Config } from '../config/config.js';
import { Customer } from './customer.entity.js';
import { createCustomer, setCustomerPassword } from './customer-service.js';
import { createDemoDatabase, createDemoSite, siteDir } from './demo-site.js';

export const DEMO_EMAIL = 'demo@example.com';

export interface DemoCredentials {
  customerId: number;
  email: string;
  password: string;
}

/**
 * The demo customer: a row, a real site folder and a real database. Idempotent: an existing
 * demo customer keeps its site and data; its password is the one saved under the data folder.
 */
export async function seedDemo(em: EntityManager, cfg: Config): Promise<DemoCredentials> {
  const credentialsFile = path.join(cfg.BACKUPS_DATA_DIR, 'demo-credentials.json');
  const saved = existsSync(credentialsFile)
    ? (JSON.parse(await readFile(credentialsFile, 'utf8')) as DemoCredentials)
    : undefined;
  const password = saved?.password ?? randomBytes(9).toString('base64url');
  let customer = await em.fork().findOne(Customer, { email: DEMO_EMAIL });
  if (customer) {
    await setCustomerPassword(em, customer.id, password);
  } else {
    customer = await createCustomer(em, {
      email: DEMO_EMAIL,
      name: 'Demo Shop',
      password,
      host: cfg.BACKUPS_NODE,
      siteLayout: 'wordpress',
    });
  }
  if (!existsSync(siteDir(cfg.BACKUPS_CUSTOMERS_ROOT, customer.id))) {
    await createDemoSite(cfg.BACKUPS_CUSTOMERS_ROOT, customer.id, 'wordpress');
    await createDemoDatabase(cfg.BACKUPS_CUSTOMER_DB_DEFAULTS_FILE, customer.id);
  }
  const credentials = { customerId: customer.id, email: DEMO_EMAIL, password };
  await mkdir(cfg.BACKUPS_DATA_DIR, { recursive: true });
  await writeFile(credentialsFile, JSON.stringify(credentials, null, 2), { mode: 0o600 });
  return credentials;
}
