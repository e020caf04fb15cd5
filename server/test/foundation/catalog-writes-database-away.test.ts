// The catalog while jobs and the database misbehave (found by the chaos soak: snapshots in a
// repository but not in the catalog).
// - A catalog sync lists the repository (seconds to minutes) while jobs go on recording their
//   snapshots: a backup that finished during the listing lost its row to the sync, and a
//   snapshot a job's retention forgot during the listing came back.
// - A snapshot recorded while MariaDB restarted (a backup's, a restore's undo point) was lost:
//   the script's event handler failed once and the row was never written. The catalog talks to
//   MariaDB through a TCP relay of the test's own, closed and opened again (the system server
//   is never stopped).
import { randomBytes } from 'node:crypto';
import { MikroORM } from '@mikro-orm/mariadb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { ormOptions } from '../../src/db/orm.js';
import {
  forgetSnapshots,
  markCatalog,
  type RepositorySnapshot,
  recordSnapshot,
  replaceCatalog,
} from '../../src/snapshots/catalog.js';
import { Snapshot } from '../../src/snapshots/snapshot.entity.js';
import { buildCustomer } from '../support/factories.js';
import { createTestDatabase, freePort, type TestDatabase } from '../support/sandbox.js';
import { TcpRelay } from '../support/tcp-relay.js';

let db: TestDatabase;
let relayOrm: MikroORM;
let port: number;
let relay: TcpRelay;

const snapshot = (customerId: number): RepositorySnapshot => ({
  id: randomBytes(32).toString('hex'),
  time: new Date().toISOString(),
  paths: ['/x'],
  tags: [`customer-${customerId}`, 'manual', 'both'],
});
const entry = (customerId: number, s: RepositorySnapshot) => ({
  customerId,
  source: 'manual' as const,
  scope: 'both' as const,
  snapshot: s,
});
const rows = async (customerId: number) =>
  (
    await db.orm.em
      .fork()
      .find(Snapshot, { customer: customerId, source: 'manual' }, { orderBy: { id: 'asc' } })
  ).map((r) => r.snapshotId);

beforeAll(async () => {
  db = await createTestDatabase();
  port = await freePort();
  relay = new TcpRelay(port);
  await relay.open();
  const cfg = { ...parseConfig({}), BACKUPS_DB_NAME: db.name, BACKUPS_DB_PORT: port };
  relayOrm = await MikroORM.init({ ...ormOptions(cfg), ensureDatabase: false });
});

afterAll(async () => {
  await relayOrm?.close(true);
  await relay?.close();
  await db?.drop();
});

describe('a catalog sync beside running jobs', () => {
  it('a backup recorded while the repository was being listed keeps its row; one that is really gone still goes', async () => {
    const customer = await buildCustomer(db.orm.em);
    const gone = snapshot(customer.id);
    await recordSnapshot(db.orm.em, entry(customer.id, gone));
    // recorded by an earlier sync, an hour ago
    await db.orm.em
      .getConnection()
      .execute(
        'update snapshots set synced_at = utc_timestamp() - interval 1 hour where snapshot_id = ?',
        [gone.id],
      );
    // the sync starts: the mark, then the listing (which shows neither snapshot: `gone` was
    // forgotten outside the catalog, the new one does not exist yet)
    const mark = await markCatalog(db.orm.em, 'manual', [customer.id]);
    // a job's backup ends during the listing and records its snapshot
    const fresh = snapshot(customer.id);
    await recordSnapshot(db.orm.em, entry(customer.id, fresh));
    const report = await replaceCatalog(db.orm.em, 'manual', [customer.id], [], mark);
    expect(await rows(customer.id)).toEqual([fresh.id]);
    expect(report).toEqual({ added: 0, removed: 1 });
    // the next sync, whose listing shows it, keeps it
    const next = await markCatalog(db.orm.em, 'manual', [customer.id]);
    await replaceCatalog(db.orm.em, 'manual', [customer.id], [entry(customer.id, fresh)], next);
    expect(await rows(customer.id)).toEqual([fresh.id]);
  });

  it("a snapshot a job's retention forgot while the repository was being listed is not added back", async () => {
    const customer = await buildCustomer(db.orm.em);
    const kept = snapshot(customer.id);
    const old = snapshot(customer.id);
    await recordSnapshot(db.orm.em, entry(customer.id, kept));
    await recordSnapshot(db.orm.em, entry(customer.id, old));
    const mark = await markCatalog(db.orm.em, 'manual', [customer.id]);
    // the listing still shows both; meanwhile the job's forget removes `old` (repository and row)
    const listing = [entry(customer.id, kept), entry(customer.id, old)];
    await forgetSnapshots(db.orm.em, customer.id, 'manual', [old.id]);
    await replaceCatalog(db.orm.em, 'manual', [customer.id], listing, mark);
    expect(await rows(customer.id)).toEqual([kept.id]);
  });

  it('a snapshot made outside any job (not in the catalog at the mark) is added', async () => {
    const customer = await buildCustomer(db.orm.em);
    const outside = snapshot(customer.id);
    const mark = await markCatalog(db.orm.em, 'manual', [customer.id]);
    const report = await replaceCatalog(
      db.orm.em,
      'manual',
      [customer.id],
      [entry(customer.id, outside)],
      mark,
    );
    expect(report).toEqual({ added: 1, removed: 0 });
    expect(await rows(customer.id)).toEqual([outside.id]);
  });
});

describe('catalog writes while the database is away', () => {
  it('a snapshot recorded while MariaDB cannot be reached is written once it is back', async () => {
    const customer = await buildCustomer(db.orm.em);
    const made = snapshot(customer.id);
    await relay.close();
    const recording = recordSnapshot(relayOrm.em.fork(), entry(customer.id, made));
    await new Promise((r) => setTimeout(r, 3000));
    expect(await rows(customer.id)).toEqual([]);
    await relay.open();
    await recording;
    expect(await rows(customer.id)).toEqual([made.id]);
  });

  it('a retention that forgets while MariaDB cannot be reached removes the rows once it is back', async () => {
    const customer = await buildCustomer(db.orm.em);
    const old = snapshot(customer.id);
    await recordSnapshot(db.orm.em, entry(customer.id, old));
    await relay.close();
    const forgetting = forgetSnapshots(relayOrm.em.fork(), customer.id, 'manual', [old.id]);
    await new Promise((r) => setTimeout(r, 3000));
    await relay.open();
    expect(await forgetting).toBe(1);
    expect(await rows(customer.id)).toEqual([]);
  });
});
