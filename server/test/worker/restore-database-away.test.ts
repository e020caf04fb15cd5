// A restore whose database server goes away at the switch-over (found by the chaos soak: the
// files were put back, the database was not, maintenance was switched off and the site ran
// half old, half new until the next catalog sync). The scripts reach MariaDB through a TCP
// relay of the test's own (the customer-db defaults file names its port); the worker's job
// store talks to MariaDB directly. The relay is closed while the site's start command runs
// after the tables were swapped, and the start command fails: the undo cannot reach the
// database. The site must stay in maintenance until the worker has put it back, and be whole
// (entirely old) and open once the database answers again.
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { sql } from '../executors/support/harness.js';
import { freePort } from '../support/sandbox.js';
import { TcpRelay } from '../support/tcp-relay.js';
import { createWorkerWorld, type WorkerWorld } from './support/worker-env.js';

describe('a restore whose database goes away during the switch-over', () => {
  let world: WorkerWorld;
  let customer: ICustomer;
  let relay: TcpRelay;
  let control: string;
  const node = 'node-dbaway';

  beforeAll(async () => {
    relay = new TcpRelay(await freePort());
    await relay.open();
    // The start command fails once, when told to, after waiting for the test's go-ahead.
    world = await createWorkerWorld({
      BACKUPS_SITE_START_COMMAND: [
        'c="$SITE_DIR/../start-control"',
        'if [ -e "$c/fail-once" ]; then rm -f "$c/fail-once"; : > "$c/called";',
        '  while [ ! -e "$c/go" ]; do sleep 0.05; done; exit 1; fi',
        'if [ -e .maintenance ]; then m=maintenance; else m=open; fi',
        'echo "start $m" >> "$SITE_DIR/../site-$CUSTOMER_ID.log"',
      ].join('\n'),
    });
    control = path.join(world.scriptsEnv.customersRoot, 'start-control');
    await writeFile(
      world.scriptsEnv.customerDbDefaultsFile,
      `[client]\nuser=root\nhost=127.0.0.1\nport=${relay.port}\n`,
    );
    await chmod(world.scriptsEnv.customerDbDefaultsFile, 0o600);
    customer = await world.customer(node);
  });
  afterAll(async () => {
    await relay?.open();
    await world?.destroy();
    await relay?.close();
  });

  const site = () => path.join(world.scriptsEnv.customersRoot, `customer-${customer.id}`);
  const theme = () => sql(`SELECT value FROM customer_${customer.id}.options WHERE name = 'theme'`);

  it('keeps the site in maintenance while part old, part new, and puts it back whole once the database answers', async () => {
    const worker = await world.startWorker(node);
    try {
      const made = await world.runJob({
        customer,
        kind: 'backup',
        scope: 'both',
        source: 'manual',
      });
      expect(made.status).toBe('completed');
      // The state the restore replaces (and must come back after the failure).
      const index = path.join(site(), 'wordpress/index.php');
      await writeFile(index, 'changed after the backup');
      await sql(
        `UPDATE customer_${customer.id}.options SET value = 'changed' WHERE name = 'theme'`,
      );

      await rm(control, { recursive: true, force: true });
      await mkdir(control);
      await writeFile(path.join(control, 'fail-once'), '');
      const restore = await world.enqueue({
        customer,
        kind: 'restore',
        scope: 'both',
        source: 'manual',
        snapshotId: made.snapshotId,
      });
      const until = Date.now() + 90_000;
      while (!existsSync(path.join(control, 'called'))) {
        const row = await world.job(restore.id);
        if (row.status !== 'pending' && row.status !== 'running') {
          throw new Error(
            `the restore ended before its site start: ${row.status} ${row.errorMessage}`,
          );
        }
        if (Date.now() > until) throw new Error('the restore never started its site');
        await new Promise((r) => setTimeout(r, 20));
      }
      // Switched over (files and tables new), the site about to fail its start: the
      // database goes away, then the start fails and the restore has to undo.
      expect(await readFile(index, 'utf8')).toContain('wp-blog-header');
      expect(await theme()).toBe('twenty');
      await relay.close();
      await writeFile(path.join(control, 'go'), '');

      // For 6 s with the database away: the site never leaves maintenance; its files may be
      // back while its tables are not (that is why it must stay closed).
      const maintenance = path.join(site(), '.maintenance');
      const awayUntil = Date.now() + 6_000;
      let sawOld = false;
      while (Date.now() < awayUntil) {
        expect(existsSync(maintenance)).toBe(true);
        if ((await readFile(index, 'utf8').catch(() => '')) === 'changed after the backup') {
          sawOld = true;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(sawOld).toBe(true);
      expect(await theme()).toBe('twenty');
      expect((await world.job(restore.id)).status).toBe('running');

      await relay.open();
      const failed = await world.waitForJob(restore.id, ['completed', 'failed'], 60_000);
      expect(failed.status).toBe('failed');
      // Whole and open: the version before the restore, files and database.
      expect(existsSync(maintenance)).toBe(false);
      expect(await readFile(index, 'utf8')).toBe('changed after the backup');
      expect(await theme()).toBe('changed');
      expect(
        await sql(
          `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'customer\\_${customer.id}\\_\\_%'`,
        ),
      ).toBe('0');
      expect(
        existsSync(
          path.join(world.scriptsEnv.customersRoot, '.restore', `customer-${customer.id}`),
        ),
      ).toBe(false);
      const log = await readFile(world.scriptsEnv.logFile(customer.id), 'utf8');
      expect(log.trim().split('\n').at(-1)).toBe('start open');

      // The customer's next job runs on the whole site.
      const again = await world.runJob({
        customer,
        kind: 'restore',
        scope: 'both',
        source: 'manual',
        snapshotId: made.snapshotId,
      });
      expect(again.status).toBe('completed');
      expect(await theme()).toBe('twenty');
    } finally {
      await relay.open();
      await worker.stop();
    }
  });
});
