import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

export const SITE_LAYOUTS = ['wordpress', 'volumes/files'] as const;
export type SiteLayout = (typeof SITE_LAYOUTS)[number];

export const Customer = defineEntity({
  name: 'Customer',
  tableName: 'customers',
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    email: p.string().length(254).unique(),
    name: p.string().length(200),
    passwordHash: p.string().length(255).hidden(),
    /** The hosting node whose worker serves this customer's site. */
    host: p.string().length(63).index(),
    siteLayout: p.enum([...SITE_LAYOUTS]).default('wordpress'),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type ICustomer = InferEntity<typeof Customer>;
