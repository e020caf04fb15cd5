import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/config.js';

/**
 * A download link's token is never stored. Each download has a random nonce; its token is
 * HMAC-SHA256(key, nonce), 32 bytes, base64url in the link; the row keeps the token's SHA-256.
 * Only the api holds the key, so the api can show the link again whenever the job is read,
 * while a reader of the database can neither fetch an archive nor forge a link. The worker that
 * serves a link needs no key: it hashes what it is given and looks the hash up.
 */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const newNonce = () => randomBytes(32).toString('hex');

export const tokenFor = (key: Buffer, nonce: string) =>
  createHmac('sha256', key).update(`download:${nonce}`).digest('base64url');

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export function downloadUrl(config: Config, node: string, token: string): string {
  const base = (config.BACKUPS_DOWNLOAD_PUBLIC_URL ?? config.BACKUPS_PUBLIC_URL).replace(
    /\/+$/,
    '',
  );
  return `${base}/downloads/${encodeURIComponent(node)}/${token}`;
}

const keys = new Map<string, Promise<Buffer>>();

/** The api's link key, from its file; a missing file is made (32 random bytes, 0600). */
export function linkKey(config: Pick<Config, 'BACKUPS_DOWNLOAD_KEY_FILE'>): Promise<Buffer> {
  const file = config.BACKUPS_DOWNLOAD_KEY_FILE;
  let key = keys.get(file);
  if (!key) {
    key = loadOrCreate(file);
    keys.set(file, key);
    key.catch(() => keys.delete(file));
  }
  return key;
}

async function loadOrCreate(file: string): Promise<Buffer> {
  try {
    return await readKey(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  try {
    // 'wx': two processes starting together make one key; the other reads it.
    await writeFile(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readKey(file);
}

async function readKey(file: string): Promise<Buffer> {
  const text = (await readFile(file, 'utf8')).trim();
  if (!/^[0-9a-f]{64,}$/.test(text)) throw new Error(`${file} does not hold a download link key`);
  return Buffer.from(text, 'hex');
}
