import { hash, randomBytes } from 'node:crypto';

/**
 * SHA-256 as 64 lowercase hex characters: how tokens and session cookies are stored. Every
 * request with a credential hashes it: the one-shot crypto.hash, ~3x faster than a Hash
 * object (createHash, update, digest), the same digest.
 */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

/** 32 random bytes, base64url (43 characters). */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The value of one cookie in a Cookie header, or null. */
export function readCookie(header: string | null | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/**
 * The token of an `Authorization: Bearer <token>` header; undefined without the header,
 * null when the header is there but is not a bearer token.
 */
export function readBearer(header: string | null | undefined): string | null | undefined {
  if (header === null || header === undefined || header === '') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Printable text: no control characters (C0, DEL, C1, line separators), no lone surrogates. */
export function isPrintable(value: string): boolean {
  return !CONTROL.test(value) && !LONE_SURROGATE.test(value);
}
