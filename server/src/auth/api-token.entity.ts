import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity.js';

/** Integrators' and admins' bearer tokens. Only a SHA-256 of the token is stored. */
export const ApiToken = defineEntity({
  name: 'ApiToken',
  tableName: 'api_tokens',
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    name: p.string().length(100),
    tokenHash: p.string().length(64).unique().hidden(),
    /** The first characters of the token, so people can tell their tokens apart. */
    prefix: p.string().length(16),
    /** null for an admin token (made by the ops CLI), which may act for any customer. */
    customer: () => p.manyToOne(Customer).nullable().deleteRule('cascade'),
    isAdmin: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
  },
});

export type IApiToken = InferEntity<typeof ApiToken>;
