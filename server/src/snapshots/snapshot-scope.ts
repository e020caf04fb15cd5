import type { JobScope } from '../jobs/job.entity.js';

/**
 * The one translation of a scope between the database and GraphQL (database | files | both)
 * and the scripts and restic tags (db | files | both: the original plan's tags say db).
 */
const TO_SCRIPT: Record<JobScope, string> = { database: 'db', files: 'files', both: 'both' };

export function scriptScope(scope: JobScope): string {
  return TO_SCRIPT[scope];
}

export function scopeOfScript(word: string): JobScope | null {
  const found = Object.entries(TO_SCRIPT).find(([, script]) => script === word);
  return found ? (found[0] as JobScope) : null;
}
