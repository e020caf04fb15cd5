// Restoring part of a snapshot (customer-restore --paths-from / --tables-from): only the
// chosen paths and tables change, the undo point puts back exactly what they replaced.
import { chmod, mkdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSite,
  createCustomerDatabase,
  createTestEnv,
  dbManifest,
  destroyTestEnv,
  dropCustomerDatabases,
  errorCode,
  exists,
  filesManifest,
  randomCustomerId,
  run,
  siteAccount,
  snapshotEvent,
  sql,
  type TestEnv,
} from './support/harness.js';
import { argFiles, entries, only, table as tableOf, without } from './support/site-parts.js';

let t: TestEnv;
const A = randomCustomerId();
let site: string;
let content: string;
let argDir: string;

beforeAll(async () => {
  t = await createTestEnv();
  site = await buildSite(t.customersRoot, A);
  content = path.join(site, 'wordpress');
  argDir = path.join(t.dataDir, 'args');
  await mkdir(argDir, { recursive: true });
  await createCustomerDatabase(A);
});
afterAll(async () => {
  await dropCustomerDatabases(A);
  await destroyTestEnv(t);
});

const args = () => argFiles(argDir);
let argFile: ReturnType<typeof args>['file'];
let pathsFile: ReturnType<typeof args>['paths'];
beforeAll(() => {
  ({ file: argFile, paths: pathsFile } = args());
});
const files = () => entries(content);

async function backup(): Promise<string> {
  const r = await run(t, 'customer-backup', [String(A), 'both']);
  expect(r.exitCode, r.stderr).toBe(0);
  return snapshotEvent(r.events)?.id ?? '';
}

const restoreDir = () => path.join(t.customersRoot, '.restore', `customer-${A}`);

describe('restoring chosen paths', () => {
  it('one file deep in a folder: its bytes and mode are back, every other file and the database unchanged, and its undo point puts back the replaced version', async () => {
    const deep = 'wp-content-2/plugins-3/file-4.php';
    await chmod(path.join(content, deep), 0o640);
    const id = await backup();
    const backedUp = await files();

    await writeFile(path.join(content, deep), 'edited after the backup');
    await chmod(path.join(content, deep), 0o600);
    await writeFile(path.join(content, 'wp-content-2/plugins-3/file-5.php'), 'also edited');
    await writeFile(path.join(content, 'added-later.txt'), 'new');
    await sql(`UPDATE customer_${A}.posts SET title = 'after the backup' WHERE id = 1`);
    const before = await files();
    const dbBefore = await dbManifest(A);

    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile([deep]),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await files();
    expect(after.get(deep)).toBe(backedUp.get(deep));
    expect((await stat(path.join(content, deep))).mode & 0o777).toBe(0o640);
    // everything else, the folders holding the file included, exactly as it was live
    expect(without(after, deep)).toEqual(without(before, deep));
    expect(await dbManifest(A)).toBe(dbBefore);
    expect(r.events.filter((e) => e.type === 'maintenance').map((e) => e.on)).toEqual([
      true,
      false,
    ]);
    expect(await exists(restoreDir())).toBe(false);

    const undo = snapshotEvent(r.events, 'safety');
    expect(undo?.tags).toEqual(
      expect.arrayContaining([`customer-${A}`, 'safety', 'files', 'partial']),
    );
    await writeFile(path.join(content, 'made-after-the-restore.txt'), 'x');
    const beforeUndo = await files();
    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'files', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    const undone = await files();
    expect(undone.get(deep)).toBe(before.get(deep));
    expect(without(undone, deep)).toEqual(without(beforeUndo, deep));
    await rm(path.join(content, 'made-after-the-restore.txt'));
  });

  it('a deleted folder comes back whole; a file of a deleted folder brings the folder back holding it alone; undoing removes both', async () => {
    const id = await backup();
    const backedUp = await files();
    await rm(path.join(content, 'wp-content-4'), { recursive: true });
    await rm(path.join(content, 'wp-content-3'), { recursive: true });
    const before = await files();
    const dbBefore = await dbManifest(A);

    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'both',
      'manual',
      '--paths-from',
      await pathsFile(['wp-content-4', 'wp-content-3/plugins-1/file-2.php']),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await files();
    expect(only(after, 'wp-content-4')).toEqual(only(backedUp, 'wp-content-4'));
    // the folders above the file as they were in the backup (mode, time), with it alone
    expect([...only(after, 'wp-content-3')]).toEqual(
      [...only(backedUp, 'wp-content-3')].filter(([p]) =>
        ['wp-content-3', 'wp-content-3/plugins-1', 'wp-content-3/plugins-1/file-2.php'].includes(p),
      ),
    );
    expect(without(after, 'wp-content-4', 'wp-content-3')).toEqual(before);
    // scope both with chosen paths: the database was restored whole
    expect(await dbManifest(A)).toBe(dbBefore);

    const undo = snapshotEvent(r.events, 'safety');
    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'both', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await files()).toEqual(before);
    expect(await dbManifest(A)).toBe(dbBefore);
  });

  it('a path inside another chosen one is restored with it (the folder whole)', async () => {
    const id = await backup();
    const backedUp = await files();
    await writeFile(path.join(content, 'wp-content-1/plugins-1/new.php'), 'added');
    await writeFile(path.join(content, 'wp-content-1/plugins-1/file-1.php'), 'edited');
    await writeFile(
      path.join(content, 'wp-content-1/plugins-10'),
      'a sibling whose name starts alike',
    );
    const before = await files();
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile([
        'wp-content-1/plugins-1/file-1.php',
        'wp-content-1/plugins-1',
        'wp-content-1/plugins-1',
      ]),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await files();
    expect(only(after, 'wp-content-1/plugins-1')).toEqual(only(backedUp, 'wp-content-1/plugins-1'));
    expect(without(after, 'wp-content-1/plugins-1')).toEqual(
      without(before, 'wp-content-1/plugins-1'),
    );
    await rm(path.join(content, 'wp-content-1/plugins-10'));
  });
});

describe('names', () => {
  it('names with spaces, non-ASCII letters, brackets, stars and a leading dash are restored as named, nothing else', async () => {
    const names = ['Grüße über.txt', 'odd/a[1]*?.txt', 'odd/-rf', 'odd/$HOME \\x'];
    await mkdir(path.join(content, 'odd'), { recursive: true });
    for (const n of names.slice(1)) await writeFile(path.join(content, n), `backed up ${n}`);
    await writeFile(path.join(content, 'odd/a1x.txt'), 'matches a[1]*?.txt as a pattern');
    const id = await backup();
    const backedUp = await files();
    for (const n of [...names, 'odd/a1x.txt']) await writeFile(path.join(content, n), 'edited');
    const before = await files();
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile(names),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await files();
    for (const n of names) expect(after.get(n)).toBe(backedUp.get(n));
    expect(without(after, ...names)).toEqual(without(before, ...names));
    await rm(path.join(content, 'odd'), { recursive: true });
  });
});

describe('bad input changes nothing', () => {
  let id: string;
  beforeAll(async () => {
    id = await backup();
  });
  const state = async () => ({ files: await files(), db: await dbManifest(A) });

  const invalid: [string, () => Promise<string[]>][] = [
    [
      'a path with ..',
      async () => ['--paths-from', await pathsFile(['wp-content-1/../../customer-1'])],
    ],
    ['an absolute path', async () => ['--paths-from', await pathsFile(['/etc/passwd'])]],
    ['a path with a newline', async () => ['--paths-from', await pathsFile(['wp-content-1\nx'])]],
    [
      'a path with an empty part',
      async () => ['--paths-from', await pathsFile(['wp-content-1//plugins-1'])],
    ],
    [
      'a path with a trailing slash',
      async () => ['--paths-from', await pathsFile(['wp-content-1/'])],
    ],
    ['a path with a . part', async () => ['--paths-from', await pathsFile(['./wp-content-1'])]],
    ['an empty path', async () => ['--paths-from', await argFile('wp-content-1\0\0image.bin\0')]],
    ['no path at all', async () => ['--paths-from', await argFile('')]],
    [
      '1001 paths',
      async () => [
        '--paths-from',
        await pathsFile(Array.from({ length: 1001 }, (_, i) => `f${i}`)),
      ],
    ],
    [
      'a path of 4097 bytes',
      async () => ['--paths-from', await pathsFile([`${'a/'.repeat(2048)}b`])],
    ],
    [
      'a path that is not UTF-8',
      async () => ['--paths-from', await argFile(Buffer.from([0x61, 0xff, 0x62, 0]))],
    ],
    [
      'a paths file that does not exist',
      async () => ['--paths-from', path.join(argDir, 'missing')],
    ],
    [
      '--paths-from given twice',
      async () => [
        '--paths-from',
        await pathsFile(['image.bin']),
        '--paths-from',
        await pathsFile(['image.bin']),
      ],
    ],
    ['--paths-from without a file', async () => ['--paths-from']],
    [
      'a table name with a backtick',
      async () => ['--tables-from', await argFile('posts`; DROP DATABASE mysql; --\n')],
    ],
    ['a table name with a quote', async () => ['--tables-from', await argFile("posts' OR '1\n")]],
    ['a table name with a NUL byte', async () => ['--tables-from', await argFile('posts\0x\n')]],
    [
      'a table name of 65 characters',
      async () => ['--tables-from', await argFile(`${'t'.repeat(65)}\n`)],
    ],
    ['an empty table name', async () => ['--tables-from', await argFile('posts\n\noptions\n')]],
  ];
  for (const [name, args] of invalid) {
    it(`${name}: exit 2, INVALID_ARGUMENT`, async () => {
      const before = await state();
      const r = await run(t, 'customer-restore', [
        String(A),
        id,
        'both',
        'manual',
        ...(await args()),
      ]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(errorCode(r.events)).toBe('INVALID_ARGUMENT');
      expect(r.events.filter((e) => e.type !== 'error')).toEqual([]);
      expect(await state()).toEqual(before);
    });
  }

  it('--paths-from with the scope db, --tables-from with the scope files: exit 2', async () => {
    const p = await run(t, 'customer-restore', [
      String(A),
      id,
      'db',
      'manual',
      '--paths-from',
      await pathsFile(['image.bin']),
    ]);
    expect(p.exitCode).toBe(2);
    expect(errorCode(p.events)).toBe('INVALID_ARGUMENT');
    const q = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--tables-from',
      await argFile('posts\n'),
    ]);
    expect(q.exitCode).toBe(2);
    expect(errorCode(q.events)).toBe('INVALID_ARGUMENT');
  });

  it('a path the backup does not hold: exit 3 before anything changes', async () => {
    const before = await state();
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile(['image.bin', 'wp-content-1/not-in-the-backup.php']),
    ]);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('PATH_NOT_FOUND');
    expect(r.events.some((e) => e.type === 'maintenance')).toBe(false);
    expect(await state()).toEqual(before);
    expect(await exists(restoreDir())).toBe(false);
  });

  it('1000 paths are taken and each is checked in the backup: one missing among them is refused', async () => {
    const present = [...(await files()).keys()]
      .filter((p) => p !== '.' && p.includes('/'))
      .slice(0, 999);
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile([
        ...present,
        ...Array.from({ length: 1000 - present.length }, (_, i) => `missing-${i}`),
      ]),
    ]);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('PATH_NOT_FOUND');
  });

  it('a path below a live folder that is a link out of the site: exit 3, nothing written outside', async () => {
    const outside = path.join(t.dataDir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'keep.txt'), 'the host');
    await rm(path.join(content, 'wp-content-0'), { recursive: true });
    await symlink(outside, path.join(content, 'wp-content-0'));
    const before = await state();
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile(['wp-content-0/plugins-0']),
    ]);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(errorCode(r.events)).toBe('LIVE_PATH_NOT_A_FOLDER');
    expect(await filesManifest(outside)).toHaveLength(2);
    expect(await state()).toEqual(before);
  });
});

const table = (name: string) => tableOf(A, name);
const tableNames = async () =>
  (
    await sql(
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'customer_${A}' ORDER BY TABLE_NAME`,
    )
  ).split('\n');

describe('restoring chosen tables', () => {
  it('two tables come back (with their triggers) while a third keeps the rows added after the backup; the files are untouched; the undo point puts them back', async () => {
    await createCustomerDatabase(A);
    const id = await backup();
    const posts = await table('posts');
    const options = await table('options');
    await sql(`INSERT INTO customer_${A}.posts (title) VALUES ('after the backup');
      DELETE FROM customer_${A}.options WHERE name = 'theme';
      INSERT INTO customer_${A}.media VALUES (2, UNHEX('AB'));
      USE customer_${A}; DROP TRIGGER posts_audit;
      CREATE DEFINER = ${siteAccount(A)} TRIGGER posts_live AFTER UPDATE ON posts FOR EACH ROW SET @x = 1;`);
    const media = await table('media');
    const audit = await table('audit');
    const filesBefore = await files();
    const dbBefore = await dbManifest(A);

    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'db',
      'manual',
      '--tables-from',
      await argFile('posts\noptions\nposts\n'),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await table('posts')).toBe(posts);
    expect(await table('options')).toBe(options);
    expect(await table('media')).toBe(media);
    expect(await table('audit')).toBe(audit);
    // the view is the live one, and reads the restored table
    expect(await sql(`SELECT COUNT(*) FROM customer_${A}.post_titles`)).toBe('3');
    expect(await files()).toEqual(filesBefore);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');

    const undo = snapshotEvent(r.events, 'safety');
    expect(undo?.tags).toEqual(expect.arrayContaining(['safety', 'db', 'partial']));
    await sql(`INSERT INTO customer_${A}.media VALUES (3, UNHEX('CD'))`);
    const mediaLater = await table('media');
    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'db', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await table('media')).toBe(mediaLater);
    await sql(`DELETE FROM customer_${A}.media WHERE id = 3`);
    expect(await dbManifest(A)).toBe(dbBefore);
  });

  it('a table dropped since the backup is created; undoing drops it again', async () => {
    const id = await backup();
    const media = await table('media');
    await sql(`DROP TABLE customer_${A}.media`);
    const dbBefore = await dbManifest(A);
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'db',
      'manual',
      '--tables-from',
      await argFile('media\n'),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await table('media')).toBe(media);
    const undo = snapshotEvent(r.events, 'safety');
    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'db', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await tableNames()).not.toContain('media');
    expect(await dbManifest(A)).toBe(dbBefore);
  });

  it('a table the dump does not hold, or a view: exit 3, nothing changed', async () => {
    const id = await backup();
    for (const name of ['not_in_the_dump', 'post_titles']) {
      const before = { files: await files(), db: await dbManifest(A) };
      const r = await run(t, 'customer-restore', [
        String(A),
        id,
        'both',
        'manual',
        '--tables-from',
        await argFile(`posts\n${name}\n`),
      ]);
      expect(r.exitCode, r.stderr).toBe(3);
      expect(errorCode(r.events)).toBe('TABLE_NOT_FOUND');
      expect(r.events.some((e) => e.type === 'maintenance')).toBe(false);
      expect({ files: await files(), db: await dbManifest(A) }).toEqual(before);
      expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
      expect(await exists(restoreDir())).toBe(false);
    }
  });
});

describe('foreign keys', () => {
  it('a table linked by a foreign key to one not chosen is refused (exit 3); chosen together they come back', async () => {
    await sql(`CREATE TABLE customer_${A}.fk_parent (id INT PRIMARY KEY) ENGINE = InnoDB;
      CREATE TABLE customer_${A}.fk_child (id INT PRIMARY KEY, parent INT,
        FOREIGN KEY (parent) REFERENCES customer_${A}.fk_parent (id)) ENGINE = InnoDB;
      INSERT INTO customer_${A}.fk_parent VALUES (1); INSERT INTO customer_${A}.fk_child VALUES (1, 1)`);
    const id = await backup();
    const parent = await table('fk_parent');
    const child = await table('fk_child');
    await sql(
      `INSERT INTO customer_${A}.fk_parent VALUES (2); INSERT INTO customer_${A}.fk_child VALUES (2, 2)`,
    );
    for (const name of ['fk_child', 'fk_parent']) {
      const before = await dbManifest(A);
      const r = await run(t, 'customer-restore', [
        String(A),
        id,
        'db',
        'manual',
        '--tables-from',
        await argFile(`${name}\n`),
      ]);
      expect(r.exitCode, r.stderr).toBe(3);
      expect(errorCode(r.events)).toBe('TABLES_LINKED');
      expect(await dbManifest(A)).toBe(before);
    }
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'db',
      'manual',
      '--tables-from',
      await argFile('fk_child\nfk_parent\n'),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await table('fk_parent')).toBe(parent);
    expect(await table('fk_child')).toBe(child);
    expect(await sql(`SHOW DATABASES LIKE 'customer\\_${A}\\_\\_%'`)).toBe('');
    await sql(`DROP TABLE customer_${A}.fk_child, customer_${A}.fk_parent`);
  });
});

describe('symlinks', () => {
  it('a link in the backup comes back as a link, never followed; nothing below it can be chosen', async () => {
    await symlink('/etc', path.join(content, 'etc-link'));
    await symlink('wp-content-1', path.join(content, 'inside-link'));
    const id = await backup();
    await rm(path.join(content, 'etc-link'));
    await rm(path.join(content, 'inside-link'));
    await mkdir(path.join(content, 'inside-link'));
    await writeFile(path.join(content, 'inside-link', 'x'), 'a folder where the link was');
    const before = await files();
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile(['etc-link', 'inside-link']),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readlink(path.join(content, 'etc-link'))).toBe('/etc');
    expect(await readlink(path.join(content, 'inside-link'))).toBe('wp-content-1');
    expect(without(await files(), 'etc-link', 'inside-link')).toEqual(
      without(before, 'etc-link', 'inside-link'),
    );
    const below = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile(['etc-link/passwd']),
    ]);
    expect(below.exitCode).toBe(3);
    expect(errorCode(below.events)).toBe('PATH_NOT_FOUND');
    // the undo point holds the folder the link replaced, and gives it back
    const undo = snapshotEvent(r.events, 'safety');
    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'files', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await files()).toEqual(before);
    await rm(path.join(content, 'inside-link'), { recursive: true });
  });

  it('a chosen path that is a live link out of the site is replaced by the backup, the link kept in the undo point, the outside untouched', async () => {
    const outside = path.join(t.dataDir, 'outside-2');
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'keep.txt'), 'the host');
    const outsideBefore = await filesManifest(outside);
    await rm(path.join(content, 'wp-content-0'), { recursive: true, force: true });
    await mkdir(path.join(content, 'wp-content-0/plugins-0'), { recursive: true });
    await writeFile(path.join(content, 'wp-content-0/plugins-0/file-0.php'), 'backed up');
    const id = await backup();
    const backedUp = await files();
    await rm(path.join(content, 'wp-content-0'), { recursive: true });
    await symlink(outside, path.join(content, 'wp-content-0'));
    const before = await files();
    const r = await run(t, 'customer-restore', [
      String(A),
      id,
      'files',
      'manual',
      '--paths-from',
      await pathsFile(['wp-content-0']),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(only(await files(), 'wp-content-0')).toEqual(only(backedUp, 'wp-content-0'));
    expect(await filesManifest(outside)).toEqual(outsideBefore);
    const undo = snapshotEvent(r.events, 'safety');
    const back = await run(t, 'customer-restore', [String(A), undo?.id ?? '', 'files', 'safety']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await readlink(path.join(content, 'wp-content-0'))).toBe(outside);
    expect(await files()).toEqual(before);
    expect(await filesManifest(outside)).toEqual(outsideBefore);
  });

  it('a live parent turned into a link out of the site while the site stops: the swap refuses, everything is put back, nothing written outside', async () => {
    const outside = path.join(t.dataDir, 'outside-3');
    await mkdir(path.join(outside, 'plugins-0'), { recursive: true });
    await writeFile(path.join(outside, 'plugins-0', 'file-0.php'), 'the host');
    const outsideBefore = await filesManifest(outside);
    await mkdir(path.join(content, 'attack/plugins-0'), { recursive: true });
    await writeFile(path.join(content, 'attack/plugins-0/file-0.php'), 'backed up');
    const id = await backup();
    const r = await run(
      t,
      'customer-restore',
      [
        String(A),
        id,
        'files',
        'manual',
        '--paths-from',
        await pathsFile(['attack/plugins-0/file-0.php']),
      ],
      {
        BACKUPS_SITE_STOP_COMMAND: `rm -rf wordpress/attack && ln -s ${outside} wordpress/attack`,
      },
    );
    expect(r.exitCode).toBe(1);
    expect(errorCode(r.events)).toBe('LIVE_PATH_NOT_A_FOLDER');
    expect(r.events.some((e) => e.phase === 'ROLLING_BACK')).toBe(true);
    expect(await filesManifest(outside)).toEqual(outsideBefore);
    expect(await readlink(path.join(content, 'attack'))).toBe(outside);
    expect(await exists(path.join(site, '.maintenance'))).toBe(false);
    expect(await exists(restoreDir())).toBe(false);
    await rm(path.join(content, 'attack'));
  });
});
