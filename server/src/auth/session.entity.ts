import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity.js';
import { StaffAccount } from '../staff/staff-account.entity.js';

/**
 * A signed-in browser, of a customer or of a staff member (never both). The cookie holds a
 * random token; only its SHA-256 is stored.
 */
export const Session = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.string().length(64).primary(),
    customer: () => p.manyToOne(Customer).deleteRule('cascade').nullable(),
    staff: () => p.manyToOne(StaffAccount).deleteRule('cascade').nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime().index(),
    ip: p.string().length(45).nullable(),
    userAgent: p.string().length(255).nullable(),
  },
});

export type ISession = InferEntity<typeof Session>;
