import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema, schemaFile } from '../../src/api/print-schema.js';

describe('schema/schema.graphql', () => {
  it('is the schema printed from the Pothos code (run `pnpm --filter @backups/server print-schema`)', () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(printedSchema());
  });

  it('keeps the names of the contract', () => {
    const sdl = printedSchema();
    for (const name of [
      'enum ErrorCode',
      'interface Error',
      'union CreateBackupResult',
      'union RestoreSnapshotResult',
      'union CancelJobResult',
      'union SignInResult',
      'union CreateApiTokenResult',
      'jobUpdated(id: ID!): BackupJob!',
      'customerJobs(customerId: ID): BackupJob!',
      'snapshots(source: SnapshotSource): [Snapshot!]!',
      'jobs(limit: Int = 10): [BackupJob!]!',
    ]) {
      expect(sdl).toContain(name);
    }
  });
});
