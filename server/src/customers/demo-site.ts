import { createHash } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { SiteLayout } from './customer.entity.js';

/** Bytes that look random but are the same every time for the same seed. */
function pseudoRandomBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function siteDir(customersRoot: string, customerId: number): string {
  return path.join(customersRoot, `customer-${customerId}`);
}

export function contentDir(customersRoot: string, customerId: number, layout: SiteLayout): string {
  return path.join(siteDir(customersRoot, customerId), layout);
}

/**
 * A small but realistic site: a few hundred files in nested folders, a binary file, a name
 * with a space and non-ASCII letters, a secret readable by its owner only, and the site's
 * container configuration beside the content folder.
 */
export async function createDemoSite(
  customersRoot: string,
  customerId: number,
  layout: SiteLayout = 'wordpress',
): Promise<string> {
  const site = siteDir(customersRoot, customerId);
  const content = contentDir(customersRoot, customerId, layout);
  await mkdir(content, { recursive: true });
  await writeFile(
    path.join(site, 'docker-compose.yml'),
    `services:\n  web:\n    image: wordpress:6\n    volumes: ["./${layout}:/var/www/html"]\n`,
  );
  const themes = ['twentytwentyfour', 'shop-theme'];
  for (const theme of themes) {
    const dir = path.join(content, 'wp-content/themes', theme);
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 40; i++) {
      await writeFile(
        path.join(dir, `part-${i}.php`),
        `<?php\n// ${theme} template part ${i}\necho "${'x'.repeat(i * 13)}";\n`,
      );
    }
  }
  for (let month = 1; month <= 12; month++) {
    const dir = path.join(content, 'wp-content/uploads/2026', String(month).padStart(2, '0'));
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 15; i++) {
      const name = `image-${month}-${i}.jpg`;
      await writeFile(
        path.join(dir, name),
        pseudoRandomBytes(`${customerId}/${name}`, 2048 + i * 512),
      );
    }
  }
  const plugins = path.join(content, 'wp-content/plugins/shop/includes/deep/deeper');
  await mkdir(plugins, { recursive: true });
  for (let i = 0; i < 20; i++) {
    await writeFile(path.join(plugins, `class-${i}.php`), `<?php class Shop${i} {}\n`);
  }
  await writeFile(
    path.join(content, 'logo.png'),
    pseudoRandomBytes(`${customerId}/logo`, 256 * 1024),
  );
  await writeFile(path.join(content, 'Grüße über.txt'), 'Hallo aus dem Süden — ça marche.\n');
  await writeFile(
    path.join(content, 'index.php'),
    '<?php require __DIR__ . "/wp-blog-header.php";\n',
  );
  const secret = path.join(content, 'wp-config.php');
  await writeFile(secret, `<?php define('DB_NAME', 'customer_${customerId}');\n`);
  await chmod(secret, 0o600);
  return site;
}

export const DEMO_DATABASE_SQL = `
create table wp_options (option_id int primary key auto_increment, option_name varchar(191) unique, option_value longtext);
create table wp_posts (id int primary key auto_increment, post_title text, post_content longtext, post_date datetime);
create table wp_users (id int primary key auto_increment, user_login varchar(60), user_email varchar(100));
create table shop_orders (id int primary key auto_increment, customer_email varchar(100), total decimal(10,2), payload blob);
insert into wp_options (option_name, option_value) values ('siteurl', 'https://shop.example'), ('blogname', 'Demo Shop'), ('timezone_string', 'Europe/Berlin');
insert into wp_users (user_login, user_email) values ('admin', 'owner@shop.example'), ('editor', 'editor@shop.example');
`;

function demoRowsSql(): string {
  const posts: string[] = [];
  const orders: string[] = [];
  for (let i = 1; i <= 60; i++) {
    posts.push(
      `('Post ${i}', 'Content of post ${i} — äöü', '2026-0${(i % 9) + 1}-1${i % 10} 10:00:00')`,
    );
    orders.push(
      `('buyer${i}@example.test', ${(i * 7.35).toFixed(2)}, unhex('${pseudoRandomBytes(`order${i}`, 32).toString('hex')}'))`,
    );
  }
  return `insert into wp_posts (post_title, post_content, post_date) values ${posts.join(',')};
insert into shop_orders (customer_email, total, payload) values ${orders.join(',')};`;
}

/** The customer's database `customer_<id>` with several tables and rows (created afresh). */
export async function createDemoDatabase(
  defaultsFile: string,
  customerId: number,
): Promise<string> {
  const name = `customer_${customerId}`;
  const sql = `drop database if exists \`${name}\`; create database \`${name}\` character set utf8mb4;
use \`${name}\`; ${DEMO_DATABASE_SQL} ${demoRowsSql()}`;
  await execa('mariadb', [`--defaults-extra-file=${defaultsFile}`], { input: sql });
  return name;
}
