import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { sql } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

/** Every file under `root` (relative path -> content), for "unchanged byte for byte". */
async function files(root: string, rel = ''): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      for (const [k, v] of await files(root, relPath)) found.set(k, v);
    } else if (entry.isFile()) {
      found.set(relPath, (await readFile(path.join(root, relPath))).toString('base64'));
    }
  }
  return found;
}

describe('a partial restore job (api choice -> task -> customer-restore --paths-from/--tables-from)', () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  const node = 'node-p';

  beforeAll(async () => {
    world = await createWorkerWorld();
    customer = await world.customer(node);
    await world.startWorker(node);
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it('puts back one deep file (bytes and mode), a deleted folder and one table, and nothing else', async () => {
    const content = path.join(
      world.scriptsEnv.customersRoot,
      `customer-${customer.id}`,
      'wordpress',
    );
    const deep = 'wp-content/uploads/2026/03/image-3-4.jpg';
    await chmod(path.join(content, deep), 0o640);
    const original = await files(content);
    const posts = await sql(`select * from customer_${customer.id}.posts order by id`);

    const backup = await world.runJob({
      customer,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
    });
    expect(backup.status, backup.errorMessage ?? '').toBe('completed');
    const snapshotId = backup.snapshotId as string;
    const index = await world.runJob({
      customer,
      kind: 'index',
      scope: 'both',
      source: 'manual',
      snapshotId,
    });
    expect(index.status, index.errorMessage ?? '').toBe('completed');

    // The site moves on: the deep file is overwritten, a folder deleted, another file edited;
    // the posts are wiped, and a row is added to options after the backup.
    await writeFile(path.join(content, deep), 'broken by an update');
    await chmod(path.join(content, deep), 0o644);
    await rm(path.join(content, 'wp-content/themes/shop-theme'), { recursive: true });
    await writeFile(path.join(content, 'index.php'), '<?php // edited after the backup\n');
    await sql(`DELETE FROM customer_${customer.id}.posts;
      INSERT INTO customer_${customer.id}.options VALUES ('added_later', 'kept')`);
    const edited = await files(content);
    const options = await sql(`select * from customer_${customer.id}.options order by name`);

    const restore = await world.runJob({
      customer,
      kind: 'restore',
      scope: 'both',
      source: 'manual',
      snapshotId,
      paths: [deep, 'wp-content/themes/shop-theme'],
      tables: ['posts'],
    });
    expect(restore.status, `${restore.errorCode}: ${restore.errorMessage}`).toBe('completed');

    const after = await files(content);
    expect(after.get(deep)).toBe(original.get(deep));
    expect((await stat(path.join(content, deep))).mode & 0o7777).toBe(0o640);
    for (const [p, bytes] of original) {
      if (p.startsWith('wp-content/themes/shop-theme/')) expect(after.get(p), p).toBe(bytes);
    }
    // Everything not chosen is as the customer left it.
    for (const [p, bytes] of edited) {
      if (p !== deep && !p.startsWith('wp-content/themes/shop-theme/')) {
        expect(after.get(p), p).toBe(bytes);
      }
    }
    expect(after.get('index.php')).toBe(
      Buffer.from('<?php // edited after the backup\n').toString('base64'),
    );
    expect(await sql(`select * from customer_${customer.id}.posts order by id`)).toBe(posts);
    expect(await sql(`select * from customer_${customer.id}.options order by name`)).toBe(options);
    // The argument files are gone with the script (which goes on after COMPLETED: the undo
    // point); the job is settled once it ended.
    const until = Date.now() + 60_000;
    while (!(await world.job(restore.id)).settledAt && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await readdir(path.join(world.scriptsEnv.dataDir, 'work', `worker-${node}`))).toEqual(
      [],
    );
  });
});
