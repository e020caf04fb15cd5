import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(E2E_DIR, '..');
export const SERVER_DIR = path.join(REPO_DIR, 'server');
export const SCREENSHOTS_DIR = path.join(E2E_DIR, 'test-results', 'screenshots');

/** The environment variable that names the JSON file describing the running system. */
export const ENV_FILE_VARIABLE = 'BACKUPS_E2E_SYSTEM_FILE';

export interface E2eCustomer {
  id: number;
  email: string;
  name: string;
  password: string;
  /** <customersRoot>/customer-<id> */
  siteDir: string;
  /** The site's own server (its "containers"), behind nginx. */
  sitePort: number;
}

/** What global-setup started, for the tests. */
export interface E2eSystem {
  /** The app through nginx: https://127.0.0.1:<port> */
  baseUrl: string;
  /** The demo customer's site through nginx (with the maintenance snippet). */
  siteUrl: string;
  tmpDir: string;
  dataDir: string;
  customersRoot: string;
  /** Where the site start/stop commands keep pid files and their event log. */
  siteStateDir: string;
  logsDir: string;
  dbName: string;
  redisPrefix: string;
  node: string;
  manualPasswordFile: string;
  customerDbDefaultsFile: string;
  demo: E2eCustomer;
  other: E2eCustomer;
}

let cached: E2eSystem | undefined;

export function system(): E2eSystem {
  if (!cached) {
    const file = process.env[ENV_FILE_VARIABLE];
    if (!file) throw new Error(`${ENV_FILE_VARIABLE} is not set: run through playwright test`);
    cached = JSON.parse(readFileSync(file, 'utf8')) as E2eSystem;
  }
  return cached;
}
