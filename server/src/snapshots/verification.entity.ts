import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity.js';
import { SNAPSHOT_SOURCES } from './snapshot-scope.js';

export const VERIFICATION_RESULTS = ['verified', 'failed'] as const;
export type VerificationResult = (typeof VERIFICATION_RESULTS)[number];

/**
 * One restore drill's verdict on a snapshot (DESIGN.md §12): the newest row of a (customer,
 * snapshot) is its `Snapshot.verification`.
 */
export const SnapshotVerification = defineEntity({
  name: 'SnapshotVerification',
  tableName: 'snapshot_verifications',
  indexes: [{ properties: ['customer', 'snapshotId', 'verifiedAt'] }],
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    customer: () => p.manyToOne(Customer).deleteRule('cascade'),
    snapshotId: p.string().length(64),
    source: p.enum([...SNAPSHOT_SOURCES]),
    jobId: p.integer().unsigned().nullable(),
    status: p.enum([...VERIFICATION_RESULTS]),
    verifiedAt: p.datetime(),
    /** The measured download and database import of the drill. */
    restoreSeconds: p.double().nullable(),
    files: p.integer().unsigned().nullable(),
    bytes: p.bigint('number').nullable(),
    tables: p.integer().unsigned().nullable(),
    /** For a failed drill, what is wrong, in the customer's words. */
    problem: p.text().nullable(),
  },
});

export type ISnapshotVerification = InferEntity<typeof SnapshotVerification>;
