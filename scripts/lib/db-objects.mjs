#!/usr/bin/env node
// The views, triggers, routines and events of a customer database, saved and recreated one
// statement at a time through a driver, for customer-restore (scripts/lib/mysql.sh).
//
//   db-objects.mjs save  <defaults-file> <db> <out.json>
//   db-objects.mjs apply <defaults-file> <db> <in.json> --customer N [--hints FILE] [--exact]
//
// Their text is the customer's (bodies, view queries, comments). The mariadb client splits
// what it is given into statements by its own reading of quotes and comments, which is not the
// server's ("--" followed by a control byte is a comment for the server, not for the client),
// so customer text is never handed to it under the worker's account. Here each object is one
// statement on a connection without multi-statements: the server reads it as one statement,
// whatever it holds. The text is the server's own SHOW CREATE, which names nothing outside
// the object's database (a trigger's, kept as written, at most its own); creating an object
// runs none of its text (bodies and view queries are stored, an event's schedule is a
// literal time by then).
//
// Definers: with --exact every object gets the definer it had (putting back what a failed
// restore replaced). Otherwise (the objects of a backup) an object keeps the definer the
// backup names (the hints file, written by neutralise_dump) only when that account holds no
// privilege outside `customer_N`; any other (root, the worker, another customer, a role, an
// account that does not exist) is replaced by the customer's own definer account,
// backups_definer_N@localhost: locked (nobody signs in as it), ALL on `customer_N` alone.
// SQL SECURITY DEFINER then never lifts anybody's rights beyond the customer's database.
//
// Errors go to stderr and the exit status is 1; nothing is printed on stdout.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// The driver is the server package's dependency (the worker runs on the same checkout).
const mariadb = createRequire(path.join(here, '../../server/package.json'))('mariadb');

/** @param {string} message */
function fail(message) {
  process.stderr.write(`db-objects: ${message}\n`);
  process.exit(1);
}

/** `name` with backticks doubled: an identifier the server reads back as exactly name. */
const q = (/** @type {string} */ name) => `\`${name.replaceAll('`', '``')}\``;

/**
 * The connection settings of a MariaDB option file (the groups the mariadb client reads).
 * The same file the scripts give the client with --defaults-extra-file.
 * @param {string} file
 */
function readDefaults(file) {
  const groups = new Set(['client', 'mysql', 'mariadb', 'mariadb-client', 'client-mariadb']);
  /** @type {Record<string, string>} */
  const out = {};
  let active = false;
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('!')) fail(`${file}: !include is not supported here`);
    const group = /^\[([^\]]+)\]$/.exec(line);
    if (group) {
      active = groups.has(group[1]?.trim().toLowerCase() ?? '');
      continue;
    }
    if (!active) continue;
    const kv = /^([A-Za-z0-9_-]+)\s*(?:=\s*(.*))?$/.exec(line);
    if (!kv?.[1]) continue;
    let value = kv[2] ?? '';
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2] ?? '';
    out[kv[1].replaceAll('_', '-').toLowerCase()] = value;
  }
  return {
    user: out.user,
    password: out.password,
    host: out.host,
    port: out.port ? Number(out.port) : undefined,
    socketPath: out.socket,
  };
}

/**
 * @param {string} defaults
 * @param {string} database
 */
function connect(defaults, database) {
  const settings = readDefaults(defaults);
  const local = !settings.host || settings.host === 'localhost';
  return mariadb.createConnection({
    ...settings,
    // The client connects to "localhost" over the socket; so does this.
    socketPath: settings.socketPath ?? (local ? '/run/mysqld/mysqld.sock' : undefined),
    database,
    collation: 'UTF8MB4_GENERAL_CI',
    multipleStatements: false,
    // Dates and large numbers are not read here; the text of each object is.
    dateStrings: true,
  });
}

/**
 * The definer clause that the server writes at the start of a SHOW CREATE text, after
 * `prefix`: DEFINER=`user`@`host` (or a role, DEFINER=`role`), then a space.
 * @param {string} text
 * @param {string} prefix
 */
function splitDefiner(text, prefix) {
  if (!text.startsWith(`${prefix}DEFINER=`)) fail(`unexpected definition: ${text.slice(0, 60)}`);
  let i = prefix.length + 'DEFINER='.length;
  const ident = () => {
    if (text[i] !== '`') fail(`unexpected definer in: ${text.slice(0, 80)}`);
    let name = '';
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('unterminated definer');
      if (c === '`') {
        if (text[i + 1] === '`') {
          name += '`';
          i += 2;
          continue;
        }
        i++;
        return name;
      }
      name += c;
      i++;
    }
  };
  const user = ident();
  let host = null;
  if (text[i] === '@') {
    i++;
    host = ident();
  }
  if (text[i] !== ' ') fail(`unexpected text after the definer: ${text.slice(0, 80)}`);
  return { definer: { user, host }, rest: text.slice(i + 1) };
}

/**
 * Every view, trigger, routine and event of `db`, as the server defines it.
 * @param {string} defaults
 * @param {string} db
 */
async function save(defaults, db) {
  const conn = await connect(defaults, db);
  try {
    /** @type {object[]} */
    const objects = [];
    const routines = await conn.query(
      `SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type, SQL_MODE AS sqlMode,
         CHARACTER_SET_CLIENT AS charset, COLLATION_CONNECTION AS collation
       FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME`,
      [db],
    );
    for (const r of routines) {
      const [row] = await conn.query(`SHOW CREATE ${r.type} ${q(db)}.${q(r.name)}`);
      const key = Object.keys(row).find((k) => k.startsWith('Create ') && k !== 'Create Time');
      const text = key ? row[key] : null;
      if (typeof text !== 'string') fail(`the definition of ${r.type} ${r.name} cannot be read`);
      objects.push({
        kind: r.type,
        name: r.name,
        ...r,
        prefix: 'CREATE ',
        ...splitDefiner(text, 'CREATE '),
      });
    }
    const events = await conn.query(
      `SELECT EVENT_NAME AS name, SQL_MODE AS sqlMode, TIME_ZONE AS timeZone,
         CHARACTER_SET_CLIENT AS charset, COLLATION_CONNECTION AS collation
       FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`,
      [db],
    );
    for (const e of events) {
      const [row] = await conn.query(`SHOW CREATE EVENT ${q(db)}.${q(e.name)}`);
      const text = row['Create Event'];
      if (typeof text !== 'string') fail(`the definition of event ${e.name} cannot be read`);
      objects.push({ kind: 'EVENT', ...e, prefix: 'CREATE ', ...splitDefiner(text, 'CREATE ') });
    }
    const views = await conn.query(
      `SELECT TABLE_NAME AS name, CHARACTER_SET_CLIENT AS charset, COLLATION_CONNECTION AS collation
       FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
      [db],
    );
    for (const v of views) {
      // With `db` the connection's database, the server writes the view's query with the
      // names of `db` unqualified: it can be created in another database as it is.
      const [row] = await conn.query(`SHOW CREATE VIEW ${q(v.name)}`);
      const text = row['Create View'];
      const algorithm = typeof text === 'string' ? /^CREATE ALGORITHM=[A-Z]+ /.exec(text) : null;
      if (!algorithm) fail(`the definition of view ${v.name} cannot be read`);
      objects.push({
        kind: 'VIEW',
        ...v,
        prefix: algorithm[0],
        ...splitDefiner(text, algorithm[0]),
      });
    }
    const triggers = await conn.query(
      `SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS \`table\`, SQL_MODE AS sqlMode,
         CHARACTER_SET_CLIENT AS charset, COLLATION_CONNECTION AS collation
       FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
       ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`,
      [db],
    );
    for (const t of triggers) {
      // As written, after the server's definer clause. A name in it can only be qualified
      // with the trigger's own database (the server keeps a trigger beside its table): for
      // the scratch database's triggers, created from the neutralised dump, none is.
      const [row] = await conn.query(`SHOW CREATE TRIGGER ${q(db)}.${q(t.name)}`);
      const text = row['SQL Original Statement'];
      if (typeof text !== 'string') fail(`the definition of trigger ${t.name} cannot be read`);
      objects.push({ kind: 'TRIGGER', ...t, prefix: 'CREATE ', ...splitDefiner(text, 'CREATE ') });
    }
    return objects;
  } finally {
    await conn.end();
  }
}

const CONFINED = `SELECT
  (SELECT COUNT(*) FROM mysql.global_priv WHERE User = ? AND Host = ?
     AND JSON_VALUE(Priv, '$.access') = 0 AND COALESCE(JSON_VALUE(Priv, '$.is_role'), 'false') <> 'true') AS account,
  (SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Host = ? AND Db NOT IN (?, ?))
  + (SELECT COUNT(*) FROM mysql.tables_priv WHERE User = ? AND Host = ? AND Db <> ?)
  + (SELECT COUNT(*) FROM mysql.columns_priv WHERE User = ? AND Host = ? AND Db <> ?)
  + (SELECT COUNT(*) FROM mysql.procs_priv WHERE User = ? AND Host = ? AND Db <> ?)
  + (SELECT COUNT(*) FROM mysql.proxies_priv WHERE User = ? AND Host = ?)
  + (SELECT COUNT(*) FROM mysql.roles_mapping WHERE User = ? AND Host = ?) AS elsewhere`;

/**
 * True when the account exists, is no role, and holds nothing outside database `db`: no global
 * privilege (so no SUPER or SET USER), no grant on another database, table, column or routine,
 * no proxy and no role. A database grant may name `db` as the pattern customer\_N or customer_N
 * (whose "_" matches one character: only names of the same length, never another customer's).
 * @param {any} conn
 * @param {{user: string, host: string | null}} definer
 * @param {string} db
 */
async function confinedTo(conn, definer, db) {
  if (definer.host === null) return false;
  const u = definer.user;
  const h = definer.host;
  const [row] = await conn.query(CONFINED, [
    u,
    h,
    u,
    h,
    db.replaceAll('_', '\\_'),
    db,
    u,
    h,
    db,
    u,
    h,
    db,
    u,
    h,
    db,
    u,
    h,
    u,
    h,
  ]);
  return Number(row.account) === 1 && Number(row.elsewhere) === 0;
}

/**
 * The definers a backup's dump named, by object (neutralise_dump's hints file: one line per
 * object, kind TAB name as written in the dump TAB definer as written), later lines winning.
 * @param {string | undefined} file
 */
function readHints(file) {
  /** @type {Map<string, {user: string, host: string | null}>} */
  const hints = new Map();
  if (!file) return hints;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kind, rawName, rawDefiner] = line.split('\t');
    if (!kind || !rawName || !rawDefiner) continue;
    const name = unquote(rawName);
    const parts = /^`((?:[^`]|``)*)`@`((?:[^`]|``)*)`$/.exec(rawDefiner);
    if (name === null || !parts) continue;
    const user = (parts[1] ?? '').replaceAll('``', '`');
    const host = (parts[2] ?? '').replaceAll('``', '`');
    hints.set(`${kind}\t${name}`, { user, host });
  }
  return hints;
}

/** A name as the dump writes it (`quoted`, or bare), the last part of a qualified one. */
function unquote(/** @type {string} */ raw) {
  const m = /(?:^|\.)(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)$/.exec(raw);
  if (!m?.[1]) return null;
  return m[1].startsWith('`') ? m[1].slice(1, -1).replaceAll('``', '`') : m[1];
}

const HINT_KIND = /** @type {Record<string, string>} */ ({
  PROCEDURE: 'ROUTINE',
  FUNCTION: 'ROUTINE',
  EVENT: 'EVENT',
  VIEW: 'VIEW',
  TRIGGER: 'TRIGGER',
});

/** Views first to last in an order where each one's views exist before it. */
const ORDER = ['PROCEDURE', 'FUNCTION', 'PACKAGE', 'PACKAGE BODY', 'VIEW', 'TRIGGER', 'EVENT'];

/**
 * @param {string} defaults
 * @param {string} db
 * @param {any[]} objects
 * @param {{customer: string, hints?: string, exact: boolean}} options
 */
async function apply(defaults, db, objects, options) {
  const conn = await connect(defaults, db);
  try {
    const hints = readHints(options.hints);
    const fallback = { user: `backups_definer_${options.customer}`, host: 'localhost' };
    let fallbackReady = false;
    /** @type {Map<string, boolean>} */
    const confined = new Map();
    const definerOf = async (/** @type {any} */ o) => {
      if (options.exact) return o.definer;
      const wanted = hints.get(`${HINT_KIND[o.kind] ?? o.kind}\t${o.name}`) ?? o.definer;
      const key = `${wanted.user}\t${wanted.host}`;
      if (!confined.has(key)) confined.set(key, await confinedTo(conn, wanted, db));
      if (confined.get(key)) return wanted;
      if (!fallbackReady) {
        // Statements of this script's own, on names built from the customer id (digits).
        await conn.query(
          `CREATE USER IF NOT EXISTS ${q(fallback.user)}@${q(fallback.host)} ACCOUNT LOCK`,
        );
        await conn.query(
          `GRANT ALL PRIVILEGES ON ${q(db.replaceAll('_', '\\_'))}.* TO ${q(fallback.user)}@${q(fallback.host)}`,
        );
        fallbackReady = true;
      }
      const who = wanted.host === null ? wanted.user : `${wanted.user}@${wanted.host}`;
      process.stderr.write(
        `db-objects: ${o.kind.toLowerCase()} ${o.name}: its definer ${who} may act outside ${db}; created with ${fallback.user}@${fallback.host}\n`,
      );
      return fallback;
    };
    const statementOf = async (/** @type {any} */ o) => {
      const d = await definerOf(o);
      const definer = d.host === null ? q(d.user) : `${q(d.user)}@${q(d.host)}`;
      return `${o.prefix}DEFINER=${definer} ${o.rest}`;
    };
    const sorted = [...objects].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
    let pendingViews = sorted.filter((o) => o.kind === 'VIEW');
    for (const o of sorted.filter(
      (o) => o.kind !== 'VIEW' && o.kind !== 'TRIGGER' && o.kind !== 'EVENT',
    )) {
      await create(conn, o, await statementOf(o));
    }
    // A view may select from another view: the ones whose views are missing wait a round.
    while (pendingViews.length > 0) {
      /** @type {any[]} */
      const waiting = [];
      /** @type {unknown} */
      let lastError = null;
      for (const o of pendingViews) {
        try {
          await create(conn, o, await statementOf(o));
        } catch (error) {
          if (/** @type {any} */ (error)?.errno !== 1146) throw error;
          waiting.push(o);
          lastError = error;
        }
      }
      if (waiting.length === pendingViews.length) throw lastError;
      pendingViews = waiting;
    }
    for (const o of sorted.filter((o) => o.kind === 'TRIGGER' || o.kind === 'EVENT')) {
      await create(conn, o, await statementOf(o));
    }
  } finally {
    await conn.end();
  }
}

/**
 * One object, under the session settings it was defined with. The connection's character set
 * stays utf8mb4 (the text is sent in it); character_set_client is set to the object's own when
 * that reads utf8mb4's bytes the same (utf8mb3 for text without 4-byte characters).
 * @param {any} conn
 * @param {any} o
 * @param {string} statement
 */
async function create(conn, o, statement) {
  const charset = String(o.charset ?? 'utf8mb4');
  const sameBytes =
    charset === 'utf8mb4' || (charset === 'utf8mb3' && !/[\u{10000}-\u{10FFFF}]/u.test(statement));
  await conn.query(
    'SET SESSION sql_mode = ?, SESSION character_set_client = ?, SESSION collation_connection = ?',
    [
      o.sqlMode ?? '',
      sameBytes ? charset : 'utf8mb4',
      sameBytes ? String(o.collation) : 'utf8mb4_general_ci',
    ],
  );
  if (o.timeZone) await conn.query('SET SESSION time_zone = ?', [o.timeZone]);
  await conn.query(statement);
  await conn.query('SET NAMES utf8mb4');
}

async function main() {
  const [command, defaults, db, file, ...rest] = process.argv.slice(2);
  if (!command || !defaults || !db || !file) fail('usage: save|apply <defaults-file> <db> <file>');
  if (!/^customer_[1-9][0-9]{0,11}(__restore)?$/.test(db)) fail(`not a customer database: ${db}`);
  if (command === 'save') {
    const objects = await save(defaults, db);
    writeFileSync(`${file}.tmp`, JSON.stringify(objects), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return;
  }
  if (command !== 'apply') fail(`unknown command ${command}`);
  /** @type {{customer: string, hints?: string, exact: boolean}} */
  const options = { customer: '', exact: false };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--exact') options.exact = true;
    else if (arg === '--customer') options.customer = rest[++i] ?? '';
    else if (arg === '--hints') options.hints = rest[++i];
    else fail(`unknown option ${arg}`);
  }
  if (!/^[1-9][0-9]{0,11}$/.test(options.customer)) fail('--customer needs the customer id');
  if (db !== `customer_${options.customer}`)
    fail(`${db} is not customer ${options.customer}'s database`);
  await apply(defaults, db, JSON.parse(readFileSync(file, 'utf8')), options);
}

main().catch((error) => fail(error instanceof Error ? error.message : String(error)));
