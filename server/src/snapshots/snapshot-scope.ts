import { enumMember } from '../db/enum-member.js';

/** What a backup holds: the database, the files, or both (DESIGN.md §3). */
export const BACKUP_SCOPES = ['database', 'files', 'both'] as const;
export type BackupScope = (typeof BACKUP_SCOPES)[number];

/** Where a snapshot lives and what it is to the customer: a manual or daily backup, an undo point. */
export const SNAPSHOT_SOURCES = ['manual', 'daily', 'safety'] as const;
export type SnapshotSource = (typeof SNAPSHOT_SOURCES)[number];

export const asBackupScope = (value: unknown): BackupScope => enumMember(BACKUP_SCOPES, value);
export const asSnapshotSource = (value: unknown): SnapshotSource =>
  enumMember(SNAPSHOT_SOURCES, value);

/**
 * The one translation of a scope between the database and GraphQL (database | files | both)
 * and the scripts and restic tags (db | files | both: the original plan's tags say db).
 */
const TO_SCRIPT: Record<BackupScope, string> = { database: 'db', files: 'files', both: 'both' };

export function scriptScope(scope: BackupScope): string {
  return TO_SCRIPT[scope];
}

export function scopeOfScript(word: string): BackupScope | null {
  const found = Object.entries(TO_SCRIPT).find(([, script]) => script === word);
  return found ? (found[0] as BackupScope) : null;
}
