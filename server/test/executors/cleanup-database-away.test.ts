// A restore's clean-up that meets a restarting database server (found by the chaos soak:
// customer_N__restore and customer_N__previous left behind for good). The DROPs failed, the
// journal was removed all the same, so no --recover ever looked again. Now the clean-up's
// statements wait for the server (db_patient, BACKUPS_DB_WAIT_SECONDS), and the journal goes
// only once the databases are gone. The script reaches MariaDB through a TCP relay of the
// test's own, closed and opened again (the system server is never stopped).
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/sandbox.js';
import { TcpRelay } from '../support/tcp-relay.js';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  dbManifest,
  destroyTestEnv,
  dropCustomerDatabases,
  exists,
  randomCustomerId,
  run,
  sleep,
  snapshotEvent,
  sql,
  start,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
const A = randomCustomerId();
let port: number;
let relay: TcpRelay;

const scratchDatabases = async () =>
  (
    await sql(
      `SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('customer_${A}__restore', 'customer_${A}__previous')`,
    )
  )
    .split('\n')
    .filter(Boolean);

beforeAll(async () => {
  port = await freePort();
  relay = new TcpRelay(port);
  await relay.open();
  t = await createTestEnv();
  // the scripts' database account, over the relay
  const cnf = path.join(t.dataDir, 'secrets', 'relay-db.cnf');
  await writeFile(cnf, `[client]\nuser=root\nhost=127.0.0.1\nport=${port}\n`, { mode: 0o600 });
  t.env.BACKUPS_CUSTOMER_DB_DEFAULTS_FILE = cnf;
  await buildSite(t.customersRoot, A);
  await createCustomerDatabase(A);
});
afterAll(async () => {
  await relay?.close();
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

describe("a restore's clean-up while the database server restarts", () => {
  it('the scratch databases are dropped once the server is back, and the journal goes after them', async () => {
    const backup = await run(t, 'customer-backup', [String(A), 'db']);
    expect(backup.exitCode).toBe(0);
    const before = await dbManifest(A);
    const id = String(snapshotEvent(backup.events)?.id);

    // restic, held at the undo point's upload until the test says go: by then the site is
    // restored and the undo point's dump made; the clean-up follows the upload
    const hold = path.join(t.dataDir, 'hold');
    const restic = path.join(t.dataDir, 'held-restic');
    await writeFile(
      restic,
      `#!/bin/bash\ncase " $* " in *" backup "*safety*) touch ${hold}.reached; while [ ! -e ${hold}.go ]; do sleep 0.05; done;; esac\nexec restic "$@"\n`,
    );
    await chmod(restic, 0o755);
    const restore = start(t, 'customer-restore', [String(A), id, 'db', 'manual'], {
      BACKUPS_RESTIC_BIN: restic,
    });
    const until = Date.now() + 60_000;
    while (!(await exists(`${hold}.reached`)) && Date.now() < until) await sleep(20);
    expect(restore.events.some((e) => e.type === 'completed')).toBe(true);
    // the database server goes away for 5 s while the undo point uploads and the clean-up starts
    await relay.close();
    await writeFile(`${hold}.go`, '');
    await sleep(5000);
    await relay.open();
    const ended = await restore.proc;
    expect(ended.exitCode).toBe(0);

    expect(await scratchDatabases()).toEqual([]);
    expect(await exists(path.join(t.customersRoot, '.restore', `customer-${A}`))).toBe(false);
    expect(await dbManifest(A)).toBe(before);
    const accounts = await sql(
      `SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'backups_restore_${A}'`,
    );
    expect(accounts.trim()).toBe('0');
  }, 120_000);
});
