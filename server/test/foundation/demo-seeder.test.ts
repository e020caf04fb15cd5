import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/auth/passwords.js';
import { parseConfig } from '../../src/config/config.js';
import { Customer } from '../../src/customers/customer.entity.js';
import { type DemoCredentials, seedDemo } from '../../src/customers/demo.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    n += entry.isDirectory() ? await countFiles(path.join(dir, entry.name)) : 1;
  }
  return n;
}

describe('the demo seeder', () => {
  let db: TestDatabase;
  let dataDir: string;
  let demo: DemoCredentials;
  const cfg = () =>
    parseConfig({
      BACKUPS_DATA_DIR: dataDir,
      BACKUPS_CUSTOMER_DB_DEFAULTS_FILE: path.join(dataDir, 'customer-db.cnf'),
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(tmpdir(), 'seed-'));
    await writeFile(
      path.join(dataDir, 'customer-db.cnf'),
      '[client]\nuser=root\nsocket=/run/mysqld/mysqld.sock\n',
    );
    demo = await seedDemo(db.orm.em, cfg());
  });
  afterAll(async () => {
    await execa('mariadb', [
      '-uroot',
      '-e',
      `DROP DATABASE IF EXISTS customer_${demo?.customerId}`,
    ]);
    await rm(dataDir, { recursive: true, force: true });
    await db.drop();
  });

  it('gives a customer who can sign in, with a real site folder', async () => {
    const customer = await db.orm.em.fork().findOneOrFail(Customer, demo.customerId);
    expect(customer.email).toBe('demo@example.com');
    expect(await verifyPassword(customer.passwordHash, demo.password)).toBe(true);
    const content = path.join(dataDir, 'customers', `customer-${demo.customerId}`, 'wordpress');
    expect(await countFiles(content)).toBeGreaterThanOrEqual(200);
    expect(await readFile(path.join(content, 'Grüße über.txt'), 'utf8')).toContain('Süden');
    expect((await stat(path.join(content, 'logo.png'))).size).toBe(256 * 1024);
    expect((await stat(path.join(content, 'wp-config.php'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(content, 'wp-content/uploads/2026/12'))).isDirectory()).toBe(true);
    await stat(path.join(content, '..', 'docker-compose.yml'));
  });

  it('gives the customer a real database with several tables and rows', async () => {
    const { stdout } = await execa('mariadb', [
      '-uroot',
      '-N',
      '-B',
      '-e',
      `SELECT table_name, table_rows FROM information_schema.tables WHERE table_schema = 'customer_${demo.customerId}' ORDER BY 1`,
    ]);
    expect(stdout.split('\n').map((line) => line.split('\t')[0])).toEqual([
      'shop_orders',
      'wp_options',
      'wp_posts',
      'wp_users',
    ]);
    const { stdout: posts } = await execa('mariadb', [
      '-uroot',
      '-N',
      '-e',
      `SELECT count(*) FROM customer_${demo.customerId}.wp_posts`,
    ]);
    expect(Number(posts)).toBe(60);
  });

  it('run again, keeps the customer, its site and its password', async () => {
    const again = await seedDemo(db.orm.em, cfg());
    expect(again).toEqual(demo);
    expect(await db.orm.em.fork().count(Customer, { email: 'demo@example.com' })).toBe(1);
  });
});
