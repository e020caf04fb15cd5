// A customer controls their own database (phpMyAdmin, their PHP code): the text of its
// routines, triggers, views and events ends up in the dump, and a restore runs the dump. These
// tests are that customer as an attacker. Whatever the text, a restore must leave every other
// database as it was, and no restored object may run with rights beyond the customer's database.
import { randomBytes } from 'node:crypto';
import { lstat, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildCustomer } from '../support/factories.js';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  dbManifest,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  randomCustomerId,
  run,
  siteAccount,
  snapshotEvent,
  sql,
  start,
  type TestEnv,
} from './support/harness.js';

let t: TestEnv;
let app: TestDatabase;
const A = randomCustomerId();
const B = A + 1;
const a = `customer_${A}`;
const b = `customer_${B}`;
// The customer's own sign-in: rights on their database alone, as a hosting company gives.
const login = `a_login_${A}`;
const loginPassword = randomBytes(12).toString('hex');

/** Runs SQL as customer A (the mariadb client, exactly as the customer would). */
async function asCustomer(input: string): Promise<void> {
  await execa('mariadb', ['-u', login, `-p${loginPassword}`, a], { input });
}

const appDump = async () =>
  (await execa('mysqldump', ['-uroot', '--skip-dump-date', '--hex-blob', app.name])).stdout;

/** Every definer of A's objects, with its grants. */
async function definersOfA(): Promise<Map<string, string[]>> {
  const rows =
    await sql(`SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '${a}'
    UNION SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '${a}'
    UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${a}'
    UNION SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '${a}'`);
  const out = new Map<string, string[]>();
  for (const definer of rows.split('\n').filter(Boolean)) {
    const [user, host] = definer.split('@');
    out.set(definer, (await sql(`SHOW GRANTS FOR '${user}'@'${host}'`)).split('\n'));
  }
  return out;
}

/** Grants that reach beyond A's database: anything but USAGE and privileges on `customer_A`. */
const beyondA = (grants: string[]) =>
  grants
    // The client's batch output doubles backslashes.
    .map((g) => g.replaceAll('\\\\', '\\'))
    .filter(
      (g) =>
        !/^GRANT USAGE ON \*\.\* TO /.test(g) &&
        !g.includes(` ON \`customer\\_${A}\`.* TO `) &&
        !g.includes(` ON \`customer_${A}\`.* TO `),
    );

const importAccounts = () =>
  sql(`SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'backups_restore_${A}'`);

async function backupAndRestore(env: Record<string, string> = {}) {
  const backup = await run(t, 'customer-backup', [String(A), 'db'], env);
  expect(backup.exitCode, backup.stderr).toBe(0);
  return run(
    t,
    'customer-restore',
    [String(A), String(snapshotEvent(backup.events)?.id), 'db', 'manual'],
    env,
  );
}

beforeAll(async () => {
  t = await createTestEnv();
  app = await createTestDatabase();
  await buildCustomer(app.orm.em, { host: 'local' });
  await buildSite(t.customersRoot, A);
  await buildSite(t.customersRoot, B, 'wordpress', 'b');
  await createCustomerDatabase(A);
  await createCustomerDatabase(B);
  await sql(`CREATE USER '${login}'@'localhost' IDENTIFIED BY '${loginPassword}';
    GRANT ALL PRIVILEGES ON \`customer\\_${A}\`.* TO '${login}'@'localhost';`);
});

afterAll(async () => {
  await sql(`DROP USER IF EXISTS '${login}'@'localhost'`);
  await dropCustomerDatabases(A);
  await dropCustomerDatabases(B);
  await app?.drop();
  await destroyTestEnv(t);
});

describe("a restore runs nothing of the customer's beyond their own database", () => {
  // Each hides "UPDATE customer_B..." where the server reads a comment or a string and the
  // mariadb client, which splits the dump into statements, may not.
  const payloads: [string, (marker: string) => string][] = [
    [
      '"--" and a control byte (\\x01) in a procedure',
      (m) =>
        `DELIMITER //\nCREATE PROCEDURE p_${m}() SELECT 1 --\x01;; UPDATE ${b}.options SET value = '${m}';; DO 0\n//\nDELIMITER ;\n`,
    ],
    [
      '"--" and \\x0b in a procedure',
      (m) =>
        `DELIMITER //\nCREATE PROCEDURE p_${m}() SELECT 1 --\x0b;; UPDATE ${b}.options SET value = '${m}';; DO 0\n//\nDELIMITER ;\n`,
    ],
    [
      '"--" and \\x1f in a function',
      (m) =>
        `DELIMITER //\nCREATE FUNCTION f_${m}() RETURNS INT DETERMINISTIC RETURN 1 --\x1f;; UPDATE ${b}.options SET value = '${m}';; DO 0\n//\nDELIMITER ;\n`,
    ],
    [
      'a "#" comment in a procedure',
      (m) =>
        `DELIMITER //\nCREATE PROCEDURE p_${m}() SELECT 1 #\x01;; UPDATE ${b}.options SET value = '${m}';; DO 0\n//\nDELIMITER ;\n`,
    ],
    [
      'a trigger',
      (m) =>
        `DELIMITER //\nCREATE TRIGGER t_${m} BEFORE INSERT ON posts FOR EACH ROW SET NEW.title = 'x' --\x01;; UPDATE ${b}.options SET value = '${m}';; DO 0\n//\nDELIMITER ;\n`,
    ],
    [
      'a view',
      (m) =>
        `CREATE VIEW v_${m} AS SELECT '*/;; UPDATE ${b}.options SET value = ''${m}'';; /*' AS x, ' */; UPDATE ${b}.options SET value = ''${m}''; -- ' AS y;\n`,
    ],
  ];

  for (const [name, payload] of payloads) {
    it(`${name}: B's database and the application database are untouched, no import account is left`, async () => {
      const marker = `m${randomBytes(4).toString('hex')}`;
      await asCustomer(payload(marker));
      try {
        const beforeB = await dbManifest(B);
        const beforeApp = await appDump();

        const r = await backupAndRestore();

        expect(await dbManifest(B)).toEqual(beforeB);
        expect(await sql(`SELECT COUNT(*) FROM ${b}.options WHERE value = '${marker}'`)).toBe('0');
        expect(await appDump()).toEqual(beforeApp);
        expect(await importAccounts()).toBe('0');
        for (const [definer, grants] of await definersOfA()) {
          expect(beyondA(grants), definer).toEqual([]);
        }
        // Either the restore put A's object back, or the server refused what the client made
        // of the dump and nothing changed: never a restore that ran the hidden statement.
        if (r.exitCode !== 0) {
          expect(errorCode(r.events)).toBe('DATABASE_IMPORT_FAILED');
          expect(r.stderr).toMatch(/^ERROR \d+ /m);
        }
      } finally {
        await sql(`DROP PROCEDURE IF EXISTS ${a}.p_${marker}; DROP FUNCTION IF EXISTS ${a}.f_${marker};
          DROP TRIGGER IF EXISTS ${a}.t_${marker}; DROP VIEW IF EXISTS ${a}.v_${marker};`);
      }
    });
  }

  it("objects defined by root come back with the customer's own definer: SQL SECURITY DEFINER lifts nothing", async () => {
    // As a hosting company's admin (root) might have made them; the customer cannot.
    await sql(`CREATE DEFINER = root@localhost PROCEDURE ${a}.lift() SQL SECURITY DEFINER
        UPDATE ${b}.options SET value = 'lifted';
      CREATE DEFINER = root@localhost SQL SECURITY DEFINER VIEW ${a}.own AS SELECT title FROM ${a}.posts;
      CREATE DEFINER = root@localhost TRIGGER ${a}.audit_b AFTER INSERT ON ${a}.audit FOR EACH ROW
        UPDATE ${b}.options SET value = 'triggered';`);
    const beforeB = await dbManifest(B);

    const r = await backupAndRestore();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`created with backups_definer_${A}@localhost`);

    const definers = await definersOfA();
    expect([...definers.keys()].sort()).toEqual([
      `backups_definer_${A}@localhost`,
      `site_${A}@localhost`,
    ]);
    for (const [definer, grants] of definers) expect(beyondA(grants), definer).toEqual([]);
    // Run by root, they act with their definer's rights: nothing of B's is reachable.
    await expect(sql(`CALL ${a}.lift()`)).rejects.toThrow(/denied/);
    expect(await sql(`SELECT COUNT(*) FROM ${a}.own`)).toBe('3');
    await expect(sql(`INSERT INTO ${a}.audit (post_id) VALUES (1)`)).rejects.toThrow(/denied/);
    expect(await dbManifest(B)).toEqual(beforeB);
    // The site's own objects keep their definer (the harness makes them with site_A).
    expect(
      await sql(
        `SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '${a}' AND TABLE_NAME = 'post_titles'`,
      ),
    ).toBe(`site_${A}@localhost`);
    expect(siteAccount(A)).toBe(`'site_${A}'@'localhost'`);
    await sql(`DROP PROCEDURE ${a}.lift; DROP VIEW ${a}.own; DROP TRIGGER ${a}.audit_b;`);
  });

  it("a view on another customer's table is refused with a clear message, and nothing changes", async () => {
    await sql(`CREATE DEFINER = root@localhost VIEW ${a}.peek AS SELECT value FROM ${b}.options`);
    try {
      const backup = await run(t, 'customer-backup', [String(A), 'db']);
      expect(backup.exitCode, backup.stderr).toBe(0);
      await sql(`UPDATE ${a}.posts SET title = 'after the backup'`);
      const changed = await dbManifest(A);
      const r = await run(t, 'customer-restore', [
        String(A),
        String(snapshotEvent(backup.events)?.id),
        'db',
        'manual',
      ]);
      expect(r.exitCode).toBe(1);
      expect(errorCode(r.events)).toBe('DATABASE_IMPORT_FAILED');
      expect(r.events.find((e) => e.type === 'error')?.message).toMatch(
        /outside the site's own database/,
      );
      expect(await dbManifest(A)).toEqual(changed);
      expect(await importAccounts()).toBe('0');
    } finally {
      await sql(`DROP VIEW IF EXISTS ${a}.peek`);
    }
  });

  it('a restore killed during the import leaves its import account to --recover, which drops it', async () => {
    // A large table keeps the import busy long enough to be caught at it.
    await sql(`CREATE TABLE ${a}.filler (id INT PRIMARY KEY, pad CHAR(200));
      INSERT INTO ${a}.filler VALUES (1, 'x');
      ${'INSERT INTO filler SELECT id + (SELECT MAX(id) FROM filler), pad FROM filler;'.repeat(18).replaceAll('filler', `${a}.filler`)}`);
    const backup = await run(t, 'customer-backup', [String(A), 'db']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const before = await dbManifest(A);
    const s = start(t, 'customer-restore', [
      String(A),
      String(snapshotEvent(backup.events)?.id),
      'db',
      'manual',
    ]);
    const until = Date.now() + 60_000;
    while ((await importAccounts()) === '0' && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect(await importAccounts()).toBe('1');
    process.kill(-(s.proc.pid as number), 'SIGKILL');
    await s.proc;
    expect(await importAccounts()).toBe('1');

    const recovered = await run(t, 'customer-restore', ['--recover', String(A)]);
    expect(recovered.exitCode, recovered.stderr).toBe(0);
    expect(await importAccounts()).toBe('0');
    expect(await dbManifest(A)).toEqual(before);
    await sql(`DROP TABLE ${a}.filler`);
  });

  it('works with the worker account deploy/README.md describes, which cannot read the application database', async () => {
    const admin = `backup_admin_${A}`;
    const password = randomBytes(12).toString('hex');
    await sql(`CREATE USER '${admin}'@'localhost' IDENTIFIED BY '${password}';
      GRANT ALL PRIVILEGES ON \`customer\\_%\`.* TO '${admin}'@'localhost' WITH GRANT OPTION;
      GRANT CREATE USER, SET USER ON *.* TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.global_priv TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.db TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.tables_priv TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.columns_priv TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.procs_priv TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.proxies_priv TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.roles_mapping TO '${admin}'@'localhost';
      GRANT SELECT ON mysql.proc TO '${admin}'@'localhost';`);
    try {
      const cnf = path.join(t.dataDir, 'secrets', 'backup-admin.cnf');
      await writeFile(
        cnf,
        `[client]\nuser=${admin}\npassword=${password}\nsocket=/run/mysqld/mysqld.sock\n`,
        { mode: 0o600 },
      );
      await sql(`CREATE DEFINER = root@localhost PROCEDURE ${a}.by_root() SELECT 1`);
      const before = await dbManifest(A);
      await sql(`UPDATE ${a}.posts SET title = 'after the backup'`);

      const r = await backupAndRestore({ BACKUPS_CUSTOMER_DB_DEFAULTS_FILE: cnf });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await dbManifest(A)).toEqual(
        before.replace(
          'DEFINER=`root`@`localhost` PROCEDURE `by_root`',
          `DEFINER=\`backups_definer_${A}\`@\`localhost\` PROCEDURE \`by_root\``,
        ),
      );
      const denied = await execa(
        'mariadb',
        [`--defaults-extra-file=${cnf}`, '-e', `SELECT COUNT(*) FROM ${app.name}.api_tokens`],
        { reject: false },
      );
      expect(denied.exitCode).not.toBe(0);
      expect(denied.stderr).toMatch(/denied/);
      await sql(`DROP PROCEDURE ${a}.by_root`);
    } finally {
      await sql(`DROP USER IF EXISTS '${admin}'@'localhost'`);
    }
  });

  it('a .maintenance symlink planted in the site folder is replaced, never followed', async () => {
    // The site folder is the customer's; the restore writes its maintenance flag there as root.
    const target = path.join(t.dataDir, 'host-file');
    await writeFile(target, 'a file of the host');
    const flag = path.join(t.customersRoot, `customer-${A}`, '.maintenance');
    await symlink(target, flag);
    const backup = await run(t, 'customer-backup', [String(A), 'files']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    const r = await run(t, 'customer-restore', [
      String(A),
      String(snapshotEvent(backup.events)?.id),
      'files',
      'manual',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.events.filter((e) => e.type === 'maintenance').map((e) => e.on)).toEqual([
      true,
      false,
    ]);
    expect(await readFile(target, 'utf8')).toBe('a file of the host');
    expect(await lstat(flag).catch(() => null)).toBeNull();
  });
});
