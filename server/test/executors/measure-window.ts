// Measures the restore maintenance window (maintenance on -> off events) for a
// site of SIZE_MB megabytes (default 512) of files plus the demo database.
// Run by hand: cd server && SIZE_MB=512 pnpm exec tsx test/executors/measure-window.ts
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  randomCustomerId,
  run,
  snapshotEvent,
} from './support/harness.js';

const sizeMb = Number(process.env.SIZE_MB ?? 512);
const t = await createTestEnv();
const id = randomCustomerId();
try {
  const site = await buildSite(t.customersRoot, id);
  await createCustomerDatabase(id);
  const big = path.join(site, 'wordpress', 'uploads');
  await mkdir(big, { recursive: true });
  for (let i = 0; i < sizeMb; i++)
    await writeFile(path.join(big, `upload-${i}.bin`), randomBytes(1024 * 1024));
  let t0 = Date.now();
  const b = await run(t, 'customer-backup', [String(id), 'both']);
  console.log(`backup of ${sizeMb} MB: exit ${b.exitCode} in ${Date.now() - t0} ms`);
  t0 = Date.now();
  const r = await run(t, 'customer-restore', [
    String(id),
    String(snapshotEvent(b.events)?.id),
    'both',
    'manual',
  ]);
  const m = r.events.filter((e) => e.type === 'maintenance');
  console.log(
    `restore: exit ${r.exitCode} in ${Date.now() - t0} ms; maintenance window ${Number(m[1]?.at) - Number(m[0]?.at)} ms`,
  );
} finally {
  await dropCustomerDatabases(id);
  await destroyTestEnv(t);
}
