import type { EntityManager } from '@mikro-orm/mariadb';
import { type AuditAction, AuditEvent } from '../../../src/audit/audit-event.entity.js';
import type { ICustomer } from '../../../src/customers/customer.entity.js';
import { BackupJob, type IBackupJob } from '../../../src/jobs/job.entity.js';

// The rows themselves are made by the one factories module of the tests.
export * from '../../support/factories.js';

export function jobRows(em: EntityManager, customer: ICustomer): Promise<IBackupJob[]> {
  return em.fork().find(BackupJob, { customer: customer.id }, { orderBy: { id: 'asc' } });
}

export function auditRows(em: EntityManager, action: AuditAction) {
  return em.fork().find(AuditEvent, { action }, { orderBy: { id: 'asc' } });
}
