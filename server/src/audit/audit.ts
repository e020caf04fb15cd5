import type { EntityManager } from '@mikro-orm/mariadb';
import type { Actor } from '../auth/viewer.js';
import { type AuditAction, AuditEvent } from './audit-event.entity.js';

export interface AuditRecord {
  action: AuditAction;
  actor: Actor;
  customerId?: number | null;
  targetId?: string | number | null;
  ip?: string | null;
  details?: Record<string, unknown> | null;
}

/** Appends one audit event: who did what, to whom, from where. */
export async function recordAudit(em: EntityManager, record: AuditRecord): Promise<void> {
  const fork = em.fork();
  fork.create(AuditEvent, {
    action: record.action,
    actorKind: record.actor.kind,
    actorId: record.actor.id,
    customerId: record.customerId ?? null,
    targetId:
      record.targetId === undefined || record.targetId === null ? null : String(record.targetId),
    ip: record.ip?.slice(0, 45) ?? null,
    details: record.details ?? null,
  });
  await fork.flush();
}
