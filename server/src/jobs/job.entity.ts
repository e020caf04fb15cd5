import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity.js';
import { enumMember } from '../db/enum-member.js';
import { BACKUP_SCOPES, type BackupScope, SNAPSHOT_SOURCES } from '../snapshots/snapshot-scope.js';

export const JOB_KINDS = ['backup', 'restore', 'index', 'download', 'verify'] as const;
/**
 * The kinds that touch the live site: at most one of them is active per customer. The others
 * only read the repository; each has its own limit of one active job per customer (both
 * enforced by the database: see the job_kinds migration).
 */
export const SITE_KINDS = ['backup', 'restore'] as const;
export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export const ACTIVE_STATUSES = ['pending', 'running'] as const;
export const REQUESTER_KINDS = ['customer', 'token', 'admin', 'operator', 'schedule'] as const;

export type JobKind = (typeof JOB_KINDS)[number];
/** A job's scope is what its backup holds, or what of a backup its restore puts back. */
export type JobScope = BackupScope;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type RequesterKind = (typeof REQUESTER_KINDS)[number];

export const asJobKind = (value: unknown): JobKind => enumMember(JOB_KINDS, value);
export const asJobStatus = (value: unknown): JobStatus => enumMember(JOB_STATUSES, value);

export const BackupJob = defineEntity({
  name: 'BackupJob',
  tableName: 'backup_jobs',
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    customer: () => p.manyToOne(Customer).deleteRule('cascade'),
    kind: p.enum([...JOB_KINDS]),
    scope: p.enum([...BACKUP_SCOPES]),
    /** backup: where the snapshot goes; restore: where the snapshot comes from. */
    source: p.enum([...SNAPSHOT_SOURCES]),
    /** backup: the snapshot made; restore: the snapshot restored. Full 64-hex restic id. */
    snapshotId: p.string().length(64).nullable(),
    /** restore: the undo point, made after the swap from what it replaced. */
    safetySnapshotId: p.string().length(64).nullable(),
    label: p.string().length(200).nullable(),
    /** A partial restore: the paths (relative to the content folder) and tables it puts back. */
    paths: p.json<string[]>().nullable(),
    tables: p.json<string[]>().nullable(),
    status: p.enum([...JOB_STATUSES]).default('pending'),
    phase: p.string().length(40).nullable(),
    progress: p.double().default(0),
    bytesDone: p.bigint('number').nullable(),
    bytesTotal: p.bigint('number').nullable(),
    etaSeconds: p.integer().nullable(),
    errorCode: p.string().length(64).nullable(),
    errorMessage: p.text().nullable(),
    /** The failing script's last log lines: for operators, never shown to the customer. */
    errorDetail: p.text().nullable(),
    requestedByKind: p.enum([...REQUESTER_KINDS]),
    requestedById: p.string().length(64).nullable(),
    /**
     * Equals customer_id while the job is pending or running, NULL otherwise; a UNIQUE index
     * on it lets the database refuse a second active job for one customer (see migration).
     */
    activeCustomer: p
      .integer()
      .unsigned()
      .nullable()
      .persist(false)
      .columnType('int unsigned')
      .fieldName('active_customer'),
    /** "<customer>:<kind>" while an index, download or verify job is active (UNIQUE). */
    activeReader: p
      .string()
      .nullable()
      .persist(false)
      .columnType('varchar(24)')
      .fieldName('active_reader'),
    createdAt: p.datetime().onCreate(() => new Date()),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    /** When the job's script had ended, housekeeping included (see JobStore.settle). */
    settledAt: p.datetime().nullable(),
    heartbeatAt: p.datetime().nullable(),
  },
});

export type IBackupJob = InferEntity<typeof BackupJob>;
