import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  dbManifest,
  destroyTestEnv,
  dropCustomerDatabases,
  randomCustomerId,
  run,
  siteManifest,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
let site: string;

beforeAll(async () => {
  t = await createTestEnv();
  site = await buildSite(t.customersRoot, A);
  await createCustomerDatabase(A);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

describe('undo points', () => {
  for (const scope of ['files', 'db', 'both'] as const) {
    it(`restoring the undo point of a ${scope} restore puts back exactly the state from before it`, async () => {
      const backup = await run(t, 'customer-backup', [String(A), 'both']);
      expect(backup.exitCode, backup.stderr).toBe(0);
      const backupId = snapshotEvent(backup.events)?.id ?? '';

      // the customer changes the site after the backup
      await writeFile(path.join(site, 'wordpress', `after-${scope}.txt`), 'made after the backup');
      await rm(path.join(site, 'wordpress', 'Grüße über.txt'), { force: true });
      await sql(`UPDATE customer_${A}.posts SET title = 'after ${scope}' WHERE id = 1;
        CREATE TABLE IF NOT EXISTS customer_${A}.after_backup (x INT)`);
      const changedFiles = await siteManifest(site);
      const changedDb = await dbManifest(A);

      const restore = await run(t, 'customer-restore', [String(A), backupId, scope, 'manual']);
      expect(restore.exitCode, restore.stderr).toBe(0);
      const undo = snapshotEvent(restore.events, 'safety');
      expect(undo?.id).toMatch(/^[0-9a-f]{64}$/);

      const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', scope, 'safety']);
      expect(back.exitCode, back.stderr).toBe(0);
      if (scope !== 'db') expect(await siteManifest(site)).toEqual(changedFiles);
      if (scope !== 'files') expect(await dbManifest(A)).toEqual(changedDb);
    });
  }
});
