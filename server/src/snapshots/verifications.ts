import type { EntityManager } from '@mikro-orm/mariadb';
import type { VerificationEvent } from '../executors/script-events.js';
import type { SnapshotSource } from './snapshot-scope.js';
import { type ISnapshotVerification, SnapshotVerification } from './verification.entity.js';

/** A drill's verdict, as the customer-verify script gave it. */
export async function recordVerification(
  em: EntityManager,
  input: {
    customerId: number;
    source: SnapshotSource;
    jobId: number | null;
    event: VerificationEvent;
  },
): Promise<ISnapshotVerification> {
  const { event } = input;
  const row = em.create(SnapshotVerification, {
    customer: input.customerId,
    snapshotId: event.snapshot,
    source: input.source,
    jobId: input.jobId,
    status: event.status,
    verifiedAt: new Date(),
    restoreSeconds: event.restoreSeconds ?? null,
    files: event.files ?? null,
    bytes: event.bytes ?? null,
    tables: event.tables ?? null,
    problem: event.status === 'failed' ? (event.problem ?? 'The backup failed its check.') : null,
  });
  await em.flush();
  return row;
}

/** The newest verdict on each of these snapshots of a customer, by restic id. */
export async function latestVerifications(
  em: EntityManager,
  customerId: number,
  snapshotIds: readonly string[],
): Promise<Map<string, ISnapshotVerification>> {
  const out = new Map<string, ISnapshotVerification>();
  if (snapshotIds.length === 0) return out;
  const rows = await em.find(
    SnapshotVerification,
    { customer: customerId, snapshotId: { $in: [...new Set(snapshotIds)] } },
    { orderBy: { verifiedAt: 'desc', id: 'desc' } },
  );
  for (const row of rows) if (!out.has(row.snapshotId)) out.set(row.snapshotId, row);
  return out;
}
