import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/mariadb';
import { type AuditAction, AuditEvent } from '../../../src/audit/audit-event.entity.js';
import { createAdminToken, createCustomerApiToken } from '../../../src/auth/api-tokens.js';
import { hashPassword } from '../../../src/auth/passwords.js';
import type { ICustomer } from '../../../src/customers/customer.entity.js';
import {
  BackupJob,
  type IBackupJob,
  type JobKind,
  type JobScope,
  type JobStatus,
} from '../../../src/jobs/job.entity.js';
import { type ISnapshot, Snapshot } from '../../../src/snapshots/snapshot.entity.js';
import type { SnapshotSource } from '../../../src/snapshots/snapshot-scope.js';
import { buildCustomer } from '../../support/factories.js';

export const PASSWORD = 'correct horse battery staple';

let passwordHash: Promise<string> | undefined;

/** A customer who can sign in with PASSWORD (the hash is computed once per file). */
export async function buildSignInCustomer(
  em: EntityManager,
  overrides: { host?: string; email?: string } = {},
): Promise<ICustomer> {
  passwordHash ??= hashPassword(PASSWORD);
  return buildCustomer(em, { ...overrides, passwordHash: await passwordHash });
}

export function snapshotHex(): string {
  return randomBytes(32).toString('hex');
}

/** A catalog row, as the worker records it after a backup. */
export async function buildSnapshot(
  em: EntityManager,
  customer: ICustomer,
  overrides: Partial<{
    snapshotId: string;
    source: SnapshotSource;
    scope: JobScope;
    time: Date;
    label: string | null;
    sizeBytes: number | null;
  }> = {},
): Promise<ISnapshot> {
  const fork = em.fork();
  const snapshotId = overrides.snapshotId ?? snapshotHex();
  const source = overrides.source ?? 'manual';
  const snapshot = fork.create(Snapshot, {
    snapshotId,
    shortId: snapshotId.slice(0, 8),
    customer: customer.id,
    source,
    scope: overrides.scope ?? 'both',
    time: overrides.time ?? new Date(),
    label: overrides.label ?? null,
    sizeBytes: overrides.sizeBytes ?? 1234,
    paths: [`/srv/customers/customer-${customer.id}`],
    tags: [`customer-${customer.id}`, source],
  });
  await fork.flush();
  return snapshot;
}

/** A job row, as if created earlier (and maybe already run by the worker). */
export async function buildJob(
  em: EntityManager,
  customer: ICustomer,
  overrides: Partial<{
    kind: JobKind;
    scope: JobScope;
    status: JobStatus;
    snapshotId: string | null;
    createdAt: Date;
    errorDetail: string | null;
  }> = {},
): Promise<IBackupJob> {
  const fork = em.fork();
  const status = overrides.status ?? 'completed';
  const job = fork.create(BackupJob, {
    customer: customer.id,
    kind: overrides.kind ?? 'backup',
    scope: overrides.scope ?? 'both',
    source: 'manual',
    snapshotId: overrides.snapshotId ?? null,
    status,
    progress: status === 'completed' ? 1 : 0,
    requestedByKind: 'customer',
    requestedById: String(customer.id),
    createdAt: overrides.createdAt ?? new Date(),
    finishedAt: ['completed', 'failed', 'cancelled'].includes(status) ? new Date() : null,
    settledAt: ['completed', 'failed', 'cancelled'].includes(status) ? new Date() : null,
    errorDetail: overrides.errorDetail ?? null,
  });
  await fork.flush();
  return job;
}

/** Changes a job row the way the worker does (then publish the change). */
export async function updateJob(
  em: EntityManager,
  id: number,
  changes: Partial<
    Pick<
      IBackupJob,
      'phase' | 'progress' | 'snapshotId' | 'safetySnapshotId' | 'startedAt' | 'finishedAt'
    > & { status: JobStatus }
  >,
): Promise<void> {
  await em.fork().nativeUpdate(BackupJob, { id }, changes);
}

export async function customerToken(em: EntityManager, customer: ICustomer): Promise<string> {
  return (await createCustomerApiToken(em, customer.id, 'test integration')).token;
}

export async function adminToken(em: EntityManager): Promise<string> {
  return (await createAdminToken(em, 'support desk')).token;
}

export function jobRows(em: EntityManager, customer: ICustomer): Promise<IBackupJob[]> {
  return em.fork().find(BackupJob, { customer: customer.id }, { orderBy: { id: 'asc' } });
}

export function auditRows(em: EntityManager, action: AuditAction) {
  return em.fork().find(AuditEvent, { action }, { orderBy: { id: 'asc' } });
}
