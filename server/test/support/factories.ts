/**
 * Rows as the application makes them, for tests and the bench: customers, jobs, catalog rows,
 * API tokens. Each writes through its own fork and returns the entity.
 */
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/mariadb';
import { createAdminToken, createCustomerApiToken } from '../../src/auth/api-tokens.js';
import { hashPassword } from '../../src/auth/passwords.js';
import { Customer, type ICustomer } from '../../src/customers/customer.entity.js';
import {
  BackupJob,
  type IBackupJob,
  type JobKind,
  type JobScope,
  type JobStatus,
} from '../../src/jobs/job.entity.js';
import { type ISnapshot, Snapshot } from '../../src/snapshots/snapshot.entity.js';
import type { SnapshotSource } from '../../src/snapshots/snapshot-scope.js';

export async function buildCustomer(
  em: EntityManager,
  overrides: Partial<
    Pick<ICustomer, 'email' | 'name' | 'host' | 'siteLayout' | 'passwordHash'>
  > = {},
): Promise<ICustomer> {
  const fork = em.fork();
  const tag = randomBytes(4).toString('hex');
  const customer = fork.create(Customer, {
    email: overrides.email ?? `customer-${tag}@example.test`,
    name: overrides.name ?? `Customer ${tag}`,
    passwordHash: overrides.passwordHash ?? 'not-a-real-hash',
    host: overrides.host ?? 'local',
    siteLayout: overrides.siteLayout ?? 'wordpress',
  });
  await fork.flush();
  return customer;
}

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

/** A customer's API token (the secret, as the customer would copy it). */
export async function customerToken(
  em: EntityManager,
  customer: Pick<ICustomer, 'id'>,
  label = 'test integration',
): Promise<string> {
  return (await createCustomerApiToken(em, customer.id, label)).token;
}

/** An operator's admin token (the secret). */
export async function adminToken(em: EntityManager, label = 'support desk'): Promise<string> {
  return (await createAdminToken(em, label)).token;
}
