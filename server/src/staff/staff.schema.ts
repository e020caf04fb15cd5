import { passwordSignInField } from '../auth/auth.schema.js';
import { hasAdminRights } from '../auth/viewer.js';
import { Customer, type ICustomer } from '../customers/customer.entity.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { parseId } from '../graphql/ids.js';
import { knownNodes, type NodeStatus, nodeStatus } from '../ops/node-status.js';
import { type IStaffAccount, StaffAccount } from './staff-account.entity.js';
import { staffSignIn } from './staff-sign-in.js';

/**
 * The support staff's view (the web app's /admin): their sign-in, customers found by email,
 * name or id, and the nodes' status. Every admin field needs admin rights (a staff session or
 * an admin token): a customer gets FORBIDDEN. Acting for a customer is the customers' own
 * mutations with `customerId`, audited with the staff member as the actor.
 */

const StaffRef = builder.objectRef<IStaffAccount>('Staff').implement({
  description: 'A member of the support staff',
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email'),
    name: t.exposeString('name'),
  }),
});

const StaffSignInSuccess = builder
  .objectRef<{ staff: IStaffAccount }>('StaffSignInSuccess')
  .implement({ fields: (t) => ({ staff: t.field({ type: StaffRef, resolve: (p) => p.staff }) }) });

passwordSignInField({
  name: 'staffSignIn',
  union: 'StaffSignInResult',
  description: "a support staff member's sign-in: sets the session cookie (for a day)",
  type: StaffSignInSuccess,
  cookieSeconds: () => 86_400,
  check: staffSignIn,
});

builder.queryField('staffMe', (t) =>
  t.field({
    type: StaffRef,
    nullable: true,
    description: 'the signed-in staff member; null for anyone else',
    resolve: (_root, _args, ctx) =>
      ctx.viewer?.kind === 'staff' ? ctx.em.findOne(StaffAccount, ctx.viewer.staffId) : null,
  }),
);

builder.objectField(CustomerRef, 'host', (t) =>
  t.string({
    nullable: true,
    description: 'the hosting node serving the site (support staff and admin tokens; else null)',
    resolve: async (c, _args, ctx) => {
      // Node names are the hosting company's own: customers are not told them.
      if (!hasAdminRights(ctx.viewer)) return null;
      return 'host' in c ? c.host : (await ctx.em.findOneOrFail(Customer, c.id)).host;
    },
  }),
);

const SEARCH_MAX = 100;

/** A query's bad argument (queries have no error unions): INVALID_INPUT. */
function invalidInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'INVALID_INPUT' } });
}

builder.queryField('adminCustomers', (t) =>
  t.field({
    type: [CustomerRef],
    description: 'support staff: customers whose email or name contains the text, or by id',
    authScopes: { admin: true },
    args: {
      search: t.arg.string({ required: true }),
      first: t.arg.int({ defaultValue: 20 }),
    },
    resolve: async (_root, args, ctx): Promise<ICustomer[]> => {
      const search = args.search.trim();
      const first = args.first ?? 20;
      if (search.length === 0 || search.length > 254) {
        throw invalidInput('Search for 1 to 254 characters.');
      }
      if (!Number.isInteger(first) || first < 1 || first > SEARCH_MAX) {
        throw invalidInput(`first is 1 to ${SEARCH_MAX}.`);
      }
      // LIKE's own characters are matched as themselves.
      const pattern = `%${search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const id = parseId(search);
      return ctx.em.find(
        Customer,
        {
          $or: [
            { email: { $like: pattern } },
            { name: { $like: pattern } },
            ...(id === null ? [] : [{ id }]),
          ],
        },
        { orderBy: { id: 'asc' }, limit: first },
      );
    },
  }),
);

const QueueCountsRef = builder.objectRef<NodeStatus['queues']['jobs']>('QueueCounts').implement({
  fields: (t) => ({
    waiting: t.exposeInt('waiting'),
    active: t.exposeInt('active'),
    delayed: t.exposeInt('delayed'),
  }),
});

const NodeStatusRef = builder.objectRef<NodeStatus>('NodeStatus').implement({
  description: 'A hosting node as the CLI `status` shows it',
  fields: (t) => ({
    node: t.exposeString('node'),
    workerAlive: t.exposeBoolean('workerAlive'),
    jobsQueue: t.field({ type: QueueCountsRef, resolve: (s) => s.queues.jobs }),
    dailyQueue: t.field({ type: QueueCountsRef, resolve: (s) => s.queues.daily }),
    running: t.int({ resolve: (s) => s.running.length }),
    pending: t.exposeInt('pending'),
    customers: t.exposeInt('customers'),
    staleCustomers: t.exposeInt('staleCustomers', {
      description: 'customers without a daily backup for 36 h',
    }),
    dailyDone: t.int({ resolve: (s) => s.daily.done.length }),
    dailyFailed: t.int({ resolve: (s) => s.daily.failed.length }),
    dailyMissing: t.int({ resolve: (s) => s.daily.missing.length }),
  }),
});

builder.queryField('adminNodes', (t) =>
  t.field({
    type: [NodeStatusRef],
    description: 'support staff: every hosting node, as the CLI `status` shows it',
    authScopes: { admin: true },
    resolve: async (_root, _args, ctx) => {
      const { config, redis, queues } = ctx.services;
      const deps = {
        em: ctx.em,
        dailyAt: config.BACKUPS_DAILY_AT,
        workerAlive: async (node: string) =>
          (await redis.exists(`${config.BACKUPS_REDIS_PREFIX}:worker:${node}`)) === 1,
        queueCounts: async (node: string, lane: 'jobs' | 'daily') => {
          const health = await queues.for(node, lane).checkHealth();
          return { waiting: health.waiting, active: health.active, delayed: health.delayed };
        },
      };
      const nodes = await knownNodes(ctx.em);
      return Promise.all(nodes.map((node) => nodeStatus(deps, node)));
    },
  }),
);
