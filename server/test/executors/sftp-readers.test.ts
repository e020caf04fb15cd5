// customer-index and customer-download over an sftp repository whose ssh settings exist only
// in BACKUPS_SSH_CONFIG (the pinned host key, the key, the port): every restic call must carry
// the repository's global arguments. Found by the chaos soak: both scripts ran `restic dump`
// without them, so an index or a download of a backup on sftp always failed.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RepositoryHost, repositoryHost } from '../support/repository-servers.js';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  destroyTestEnv,
  dropCustomerDatabases,
  listedEntries,
  randomCustomerId,
  run,
  snapshotEvent,
  type TestEnv,
} from './support/harness.js';

let host: RepositoryHost;
let t: TestEnv;
const customer = randomCustomerId();
let snapshot: string;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sftp-readers-'));
  host = await repositoryHost('sftp', dir);
  t = await createTestEnv(host.node.env, { dir });
  await buildSite(t.customersRoot, customer, 'wordpress', 'sftp');
  await createCustomerDatabase(customer);
  const b = await run(t, 'customer-backup', [String(customer), 'both']);
  expect(b.exitCode, b.stderr).toBe(0);
  snapshot = String(snapshotEvent(b.events)?.id);
});

afterAll(async () => {
  await dropCustomerDatabases(customer);
  await host?.destroy();
  await destroyTestEnv(t);
});

describe('reading a backup on an sftp repository', () => {
  it("customer-index lists the snapshot's files and the dump's tables", async () => {
    const r = await run(t, 'customer-index', [String(customer), snapshot, 'manual']);
    expect(r.exitCode, r.stderr).toBe(0);
    const paths = listedEntries(r.stdout).map((e) => e.path);
    expect(paths).toContain('wp-content-4/plugins-5/file-6.php');
    const tables = r.events.filter((e) => e.type === 'table').map((e) => e.name);
    expect(tables).toEqual(expect.arrayContaining(['media', 'options', 'posts']));
  });

  it('customer-download builds the archive of the files and the database', async () => {
    const r = await run(t, 'customer-download', [
      String(customer),
      snapshot,
      'manual',
      'both',
      '--format',
      'tar_gz',
      '--out',
      'sftp.tar.gz',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const archive = r.events.find((e) => e.type === 'archive');
    const bytes = await readFile(path.join(t.dataDir, 'downloads', 'sftp.tar.gz'));
    expect(archive?.size).toBe(bytes.length);
    expect(bytes.length).toBeGreaterThan(1000);
  });
});
