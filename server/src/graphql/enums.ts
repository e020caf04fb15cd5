import {
  JOB_KINDS,
  JOB_SCOPES,
  JOB_STATUSES,
  type JobKind,
  type JobScope,
  type JobStatus,
  SNAPSHOT_SOURCES,
  type SnapshotSource,
} from '../jobs/job.entity.js';
import { builder } from './builder.js';

/**
 * An entity's enum column as its exact union: the entities' inferred enum types are wider
 * than the value lists they are built from.
 */
function member<T extends string>(values: readonly T[], value: unknown): T {
  const found = values.find((v) => v === value);
  if (found === undefined) throw new Error(`unexpected enum value ${String(value)}`);
  return found;
}
export const asJobKind = (value: unknown): JobKind => member(JOB_KINDS, value);
export const asJobScope = (value: unknown): JobScope => member(JOB_SCOPES, value);
export const asJobStatus = (value: unknown): JobStatus => member(JOB_STATUSES, value);
export const asSnapshotSource = (value: unknown): SnapshotSource => member(SNAPSHOT_SOURCES, value);

// GraphQL values are upper case; the database's (and the entities') are lower case.

export const BackupScopeEnum = builder.enumType('BackupScope', {
  values: {
    DATABASE: { value: 'database' },
    FILES: { value: 'files' },
    BOTH: { value: 'both' },
  } as const,
});

export const SnapshotSourceEnum = builder.enumType('SnapshotSource', {
  values: {
    MANUAL: { value: 'manual' },
    DAILY: { value: 'daily' },
    SAFETY: { value: 'safety' },
  } as const,
});

export const JobKindEnum = builder.enumType('JobKind', {
  values: { BACKUP: { value: 'backup' }, RESTORE: { value: 'restore' } } as const,
});

export const JobStatusEnum = builder.enumType('JobStatus', {
  values: {
    PENDING: { value: 'pending' },
    RUNNING: { value: 'running' },
    COMPLETED: { value: 'completed' },
    FAILED: { value: 'failed' },
    CANCELLED: { value: 'cancelled' },
  } as const,
});
