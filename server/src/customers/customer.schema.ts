import { mayActFor, viewerCustomerId } from '../auth/viewer.js';
import { builder } from '../graphql/builder.js';
import { forbidden } from '../graphql/errors.js';
import { parseId } from '../jobs/job-requests.js';
import { Customer, type ICustomer } from './customer.entity.js';

/** A customer (one site). Other domains add their fields (snapshots, jobs, apiTokens). */
export const CustomerRef = builder.objectRef<ICustomer>('Customer');

CustomerRef.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email'),
    name: t.exposeString('name'),
  }),
});

builder.queryType({});

builder.queryField('me', (t) =>
  t.field({
    type: CustomerRef,
    nullable: true,
    description: 'null when not signed in',
    resolve: (_root, _args, ctx) => {
      const customerId = viewerCustomerId(ctx.viewer);
      return customerId === null ? null : ctx.em.findOne(Customer, { id: customerId });
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
