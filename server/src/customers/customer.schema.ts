import type { EntityManager } from '@mikro-orm/mariadb';
import { mayActFor, viewerCustomerId } from '../auth/viewer.js';
import { builder } from '../graphql/builder.js';
import { forbidden } from '../graphql/errors.js';
import { parseId } from '../graphql/ids.js';
import { Customer, type ICustomer } from './customer.entity.js';

/**
 * A customer as the schema holds it: the row, or only its id when the viewer's session or
 * token already proves the customer (`me`); the row is then read once, only if a field asks.
 */
export type CustomerNode = ICustomer | { id: number; row?: Promise<ICustomer> };

function customerRow(customer: CustomerNode, em: EntityManager): Promise<ICustomer> {
  if ('email' in customer) return Promise.resolve(customer);
  customer.row ??= em.findOneOrFail(Customer, { id: customer.id });
  return customer.row;
}

/** A customer (one site). Other domains add their fields (snapshots, jobs, apiTokens). */
export const CustomerRef = builder.objectRef<CustomerNode>('Customer');

CustomerRef.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.string({ resolve: async (c, _args, ctx) => (await customerRow(c, ctx.em)).email }),
    name: t.string({ resolve: async (c, _args, ctx) => (await customerRow(c, ctx.em)).name }),
  }),
});

builder.queryType({});

builder.queryField('me', (t) =>
  t.field({
    type: CustomerRef,
    nullable: true,
    description: 'null when not signed in',
    resolve: (_root, _args, ctx) => {
      // A live session or token belongs to an existing customer (rows cascade on delete).
      const customerId = viewerCustomerId(ctx.viewer);
      return customerId === null ? null : { id: customerId };
    },
  }),
);

builder.queryField('customer', (t) =>
  t.field({
    type: CustomerRef,
    nullable: true,
    description: 'an admin token, or the customer itself',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { signedIn: true },
    resolve: (_root, args, ctx) => {
      const id = parseId(args.id);
      if (id === null) return null;
      if (!mayActFor(ctx.viewer, id)) throw forbidden();
      return ctx.em.findOne(Customer, { id });
    },
  }),
);
