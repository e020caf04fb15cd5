import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

/** A member of the hosting company's support staff: signs in with rights over every customer. */
export const StaffAccount = defineEntity({
  name: 'StaffAccount',
  tableName: 'staff_accounts',
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    email: p.string().length(254).unique(),
    name: p.string().length(200),
    passwordHash: p.string().length(255).hidden(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type IStaffAccount = InferEntity<typeof StaffAccount>;
