// The measured site: a folder of files (many small, some medium, a few large; random, so
// incompressible and never deduplicated) and a database of rows of random text.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { ICustomer } from '../../server/src/customers/customer.entity.js';
import type { BenchWorld } from './env.js';

export interface SiteSize {
  filesBytes: number;
  databaseBytes: number;
}

const MiB = 2 ** 20;
export const SITE_FULL: SiteSize = { filesBytes: 1024 * MiB, databaseBytes: 200 * 1_000_000 };
export const SITE_QUICK: SiteSize = { filesBytes: 16 * MiB, databaseBytes: 4 * 1_000_000 };

export interface BenchSite {
  customer: ICustomer;
  siteDir: string;
  files: number;
  filesBytes: number;
  databaseBytes: number;
}

/** 5/8 of the bytes in 5 large files, 2/8 in 1 MiB files, 1/8 in small files of 0.5-15.5 KiB. */
async function writeFiles(content: string, total: number): Promise<number> {
  let files = 0;
  const large = Math.floor((total * 5) / 8 / 5);
  for (let i = 0; i < 5; i++) {
    const dir = path.join(content, 'wp-content/uploads/video');
    await mkdir(dir, { recursive: true });
    const out = createWriteStream(path.join(dir, `clip-${i}.mp4`));
    for (let left = large; left > 0; left -= 4 * MiB) {
      if (!out.write(randomBytes(Math.min(4 * MiB, left)))) {
        await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      }
    }
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
    files++;
  }
  const medium = Math.floor((total * 2) / 8 / MiB);
  for (let i = 0; i < medium; i++) {
    const dir = path.join(
      content,
      'wp-content/uploads/2026',
      String((i % 12) + 1).padStart(2, '0'),
    );
    if (i < 12) await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `photo-${i}.jpg`), randomBytes(MiB));
    files++;
  }
  let smallLeft = total - 5 * large - medium * MiB;
  for (let i = 0; smallLeft > 0; i++) {
    const dir = path.join(content, 'wp-content/plugins', `plugin-${Math.floor(i / 256)}`);
    if (i % 256 === 0) await mkdir(dir, { recursive: true });
    const size = Math.min(smallLeft, 512 + ((i * 7919) % 31) * 512);
    await writeFile(path.join(dir, `file-${i}.php`), randomBytes(size));
    smallLeft -= size;
    files++;
  }
  return files;
}

/** customer_<id> with one table of random text rows, about `bytes` of data. */
async function writeDatabase(world: BenchWorld, customerId: number, bytes: number): Promise<void> {
  const db = `customer_${customerId}`;
  world.trackCustomerDatabase(customerId);
  await world.sql(
    `drop database if exists ${db}; create database ${db} character set utf8mb4;
     create table ${db}.wp_posts (id int primary key auto_increment, post_title varchar(200), post_content mediumtext);
     create table ${db}.wp_options (option_name varchar(191) primary key, option_value text);
     insert into ${db}.wp_options values ('siteurl', 'https://bench.example'), ('blogname', 'Bench');`,
  );
  const file = path.join(world.dataDir, `rows-${customerId}.sql`);
  const out = createWriteStream(file);
  const rowText = 2048;
  const rows = Math.ceil(bytes / rowText);
  for (let r = 0; r < rows; r += 400) {
    const values: string[] = [];
    for (let k = r; k < Math.min(rows, r + 400); k++) {
      const text = randomBytes((rowText * 3) / 4).toString('base64');
      values.push(`('Post ${k}','${text}')`);
    }
    if (
      !out.write(`insert into wp_posts (post_title, post_content) values ${values.join(',')};\n`)
    ) {
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await execa('mariadb', ['-uroot', db], { inputFile: file });
  await rm(file, { force: true });
}

export async function buildSite(world: BenchWorld, size: SiteSize): Promise<BenchSite> {
  const customer = await world.customer();
  const siteDir = path.join(world.customersRoot, `customer-${customer.id}`);
  const content = path.join(siteDir, 'wordpress');
  await mkdir(content, { recursive: true });
  await writeFile(
    path.join(siteDir, 'docker-compose.yml'),
    'services:\n  web:\n    image: wordpress:6\n',
  );
  await writeFile(
    path.join(content, 'index.php'),
    '<?php require __DIR__ . "/wp-blog-header.php";\n',
  );
  const files = (await writeFiles(content, size.filesBytes)) + 1;
  await writeDatabase(world, customer.id, size.databaseBytes);
  return {
    customer,
    siteDir,
    files,
    filesBytes: size.filesBytes,
    databaseBytes: size.databaseBytes,
  };
}
