// A site's state as the chaos run compares it: every file of the site folder (path, mode,
// sha256 of the bytes; the .maintenance flag left out: its absence is an invariant of its own)
// and the database (each base table's rows, by CHECKSUM TABLE EXTENDED; the views' and
// triggers' names). States are kept as maps, so a partial restore's expected result can be
// composed from the state before it and the restored snapshot's.
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MariaDb } from './services.js';
import { sha256 } from './world.js';

export interface SiteState {
  /** relative path -> "mode sha256" (folders: "dir mode") */
  files: Map<string, string>;
  /** "table:<name>" -> checksum, "view:<name>", "trigger:<name>" -> "" */
  database: Map<string, string>;
}

export const stateKey = (s: SiteState) =>
  sha256(JSON.stringify([[...s.files.entries()].sort(), [...s.database.entries()].sort()]));

async function walk(root: string, rel: string, out: Map<string, string>): Promise<void> {
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (relPath === '.maintenance') continue;
    const full = path.join(root, relPath);
    const st = await lstat(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (entry.isDirectory()) {
      out.set(relPath, `dir ${mode}`);
      await walk(root, relPath, out);
    } else if (entry.isFile()) {
      out.set(relPath, `${mode} ${sha256(await readFile(full))}`);
    } else {
      out.set(relPath, `other ${mode}`);
    }
  }
}

export async function readSiteState(db: MariaDb, siteDir: string, id: number): Promise<SiteState> {
  const files = new Map<string, string>();
  await walk(siteDir, '', files);
  const database = new Map<string, string>();
  const schema = `customer_${id}`;
  const tables = (await db.sql(`SHOW FULL TABLES FROM ${schema}`)).split('\n').filter(Boolean);
  const base: string[] = [];
  for (const line of tables) {
    const [name, type] = line.split('\t');
    if (!name) continue;
    if (type === 'VIEW') database.set(`view:${name}`, '');
    else base.push(name);
  }
  if (base.length > 0) {
    const sums = await db.sql(
      `CHECKSUM TABLE ${base.map((t) => `${schema}.\`${t}\``).join(', ')} EXTENDED`,
    );
    for (const line of sums.split('\n').filter(Boolean)) {
      const [qualified, sum] = line.split('\t');
      database.set(`table:${(qualified ?? '').split('.').slice(1).join('.')}`, sum ?? '');
    }
  }
  const triggers = await db.sql(
    `SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = '${schema}'`,
  );
  for (const t of triggers.split('\n').filter(Boolean)) database.set(`trigger:${t}`, '');
  return { files, database };
}

/** Changes the live site a little: a new file, a changed one, a row added and one changed. */
export async function editSite(
  db: MariaDb,
  siteDir: string,
  id: number,
  serial: number,
): Promise<void> {
  const content = path.join(siteDir, 'wordpress');
  await writeFile(
    path.join(content, 'wp-content-0', 'plugins-0', `chaos-${serial % 7}.php`),
    `<?php // ${serial} ${randomBytes(16).toString('hex')}\n`,
  );
  await writeFile(
    path.join(content, `wp-content-${serial % 5}`, `plugins-${serial % 6}`, 'file-1.php'),
    `<?php // edited ${serial} ${randomBytes(8).toString('hex')}\n`,
  );
  await db.sql(
    `INSERT INTO customer_${id}.posts (title, body) VALUES ('Chaos ${serial}', '${randomBytes(64).toString('hex')}');
     UPDATE customer_${id}.options SET value = 'theme-${serial}' WHERE name = 'theme';`,
  );
}

/** `before` with the given scope of `restored` put back (paths: relative to the site folder). */
export function composeRestore(
  before: SiteState,
  restored: SiteState,
  what: { files?: 'all' | string[]; tables?: 'all' | string[] },
): SiteState {
  const files = new Map(before.files);
  if (what.files === 'all') {
    // the content folder is what a files restore replaces; the rest of the site stays
    for (const key of [...files.keys()]) if (key.startsWith('wordpress/')) files.delete(key);
    for (const [key, value] of restored.files)
      if (key.startsWith('wordpress/')) files.set(key, value);
  } else if (what.files) {
    for (const p of what.files) {
      const under = (key: string) => key === p || key.startsWith(`${p}/`);
      for (const key of [...files.keys()]) if (under(key)) files.delete(key);
      for (const [key, value] of restored.files) if (under(key)) files.set(key, value);
    }
  }
  let database = new Map(before.database);
  if (what.tables === 'all') database = new Map(restored.database);
  else if (what.tables) {
    for (const t of what.tables) {
      database.delete(`table:${t}`);
      const v = restored.database.get(`table:${t}`);
      if (v !== undefined) database.set(`table:${t}`, v);
    }
  }
  return { files, database };
}

/** What differs between two states (for a violation's message). */
export function stateDiff(a: SiteState, b: SiteState, max = 6): string[] {
  const out: string[] = [];
  for (const [which, x, y] of [
    ['file', a.files, b.files],
    ['db', a.database, b.database],
  ] as const) {
    for (const k of new Set([...x.keys(), ...y.keys()])) {
      if (x.get(k) !== y.get(k))
        out.push(`${which} ${k}: ${x.get(k) ?? '-'} vs ${y.get(k) ?? '-'}`);
      if (out.length >= max) return out;
    }
  }
  return out;
}
