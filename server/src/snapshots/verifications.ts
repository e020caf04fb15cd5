import type { EntityManager } from '@mikro-orm/mariadb';
import DataLoader from 'dataloader';
import type { VerificationEvent } from '../executors/script-events.js';
import { ACTIVE_STATUSES, BackupJob } from '../jobs/job.entity.js';
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

/** What Snapshot.verification shows: the newest verdict, and a drill waiting or running now. */
export interface VerificationView {
  status: 'pending' | 'running' | 'verified' | 'failed';
  verifiedAt: Date | null;
  restoreSeconds: number | null;
  files: number | null;
  bytes: number | null;
  tables: number | null;
  problem: string | null;
}

const loaders = new WeakMap<EntityManager, DataLoader<string, VerificationView | null>>();

/**
 * The verification of a customer's snapshot; the lookups of one request are batched (a page of
 * 35 snapshots costs two queries). A drill waiting or running shows as PENDING or RUNNING with
 * the last verdict's figures, if any.
 */
export function loadVerification(
  em: EntityManager,
  customerId: number,
  snapshotId: string,
): Promise<VerificationView | null> {
  let loader = loaders.get(em);
  if (!loader) {
    loader = new DataLoader(
      async (keys: readonly string[]) => {
        const pairs = keys.map((key) => {
          const [customer, snapshot] = key.split(':') as [string, string];
          return { customer: Number(customer), snapshotId: snapshot };
        });
        const fork = em.fork();
        const [verdicts, drills] = await Promise.all([
          fork.find(SnapshotVerification, { $or: pairs }, { orderBy: { id: 'desc' } }),
          fork.find(BackupJob, {
            kind: 'verify',
            status: { $in: [...ACTIVE_STATUSES] },
            $or: pairs,
          }),
        ]);
        const newest = new Map<string, ISnapshotVerification>();
        for (const v of verdicts) {
          const key = `${v.customer.id}:${v.snapshotId}`;
          if (!newest.has(key)) newest.set(key, v);
        }
        const active = new Map(drills.map((j) => [`${j.customer.id}:${j.snapshotId}`, j]));
        return keys.map((key) => {
          const verdict = newest.get(key);
          const drill = active.get(key);
          if (!verdict && !drill) return null;
          return {
            status: drill ? (drill.status as 'pending' | 'running') : (verdict?.status ?? 'failed'),
            verifiedAt: verdict?.verifiedAt ?? null,
            restoreSeconds: verdict?.restoreSeconds == null ? null : Number(verdict.restoreSeconds),
            files: verdict?.files ?? null,
            bytes: verdict?.bytes == null ? null : Number(verdict.bytes),
            tables: verdict?.tables ?? null,
            problem: verdict?.problem ?? null,
          };
        });
      },
      { cache: false, maxBatchSize: 200 },
    );
    loaders.set(em, loader);
  }
  return loader.load(`${customerId}:${snapshotId}`);
}
