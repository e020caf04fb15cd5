import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

export const AUDIT_ACTIONS = [
  'sign_in',
  'sign_in_failed',
  'sign_out',
  'backup_requested',
  'restore_requested',
  'job_cancelled',
  'job_retried',
  'token_created',
  'token_revoked',
  'customer_created',
  'staff_created',
  'verify_requested',
  'repository_checked',
  'download_requested',
  'download_created',
  'download_fetched',
  'download_revoked',
  'webhook_created',
  'webhook_deleted',
  'customer_moved',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who did what, when, from where. Append-only. */
export const AuditEvent = defineEntity({
  name: 'AuditEvent',
  tableName: 'audit_events',
  indexes: [{ properties: ['customerId', 'at'] }],
  properties: {
    id: p.bigint('number').primary().unsigned().autoincrement(),
    at: p.datetime().onCreate(() => new Date()),
    action: p.enum([...AUDIT_ACTIONS]),
    actorKind: p.string().length(20),
    actorId: p.string().length(64).nullable(),
    customerId: p.integer().unsigned().nullable(),
    targetId: p.string().length(64).nullable(),
    ip: p.string().length(45).nullable(),
    details: p.json<Record<string, unknown>>().nullable(),
  },
});

export type IAuditEvent = InferEntity<typeof AuditEvent>;
