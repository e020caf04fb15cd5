import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';

/**
 * Webhook secrets at rest: AES-256-GCM under a key from the configuration. Hashing them, as
 * for API tokens, is not possible: the worker signs every delivery with the secret itself.
 * Stored as base64 of iv (12) | tag (16) | ciphertext, prefixed with the format's version.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromConfig(
    cfg: Pick<Config, 'BACKUPS_WEBHOOK_KEY' | 'BACKUPS_WEBHOOK_KEY_FILE'>,
  ): SecretBox | null {
    let hex = cfg.BACKUPS_WEBHOOK_KEY;
    if (!hex) {
      try {
        hex = readFileSync(cfg.BACKUPS_WEBHOOK_KEY_FILE, 'utf8').trim();
      } catch {
        return null;
      }
    }
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
      throw new Error(`${cfg.BACKUPS_WEBHOOK_KEY_FILE}: the webhook key is not 64 hex characters`);
    }
    return new SecretBox(Buffer.from(hex, 'hex'));
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  open(sealed: string): string {
    if (!sealed.startsWith('v1:')) throw new Error('unknown sealed secret format');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
