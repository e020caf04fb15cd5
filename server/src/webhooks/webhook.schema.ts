import { actorOf, hasAdminRights, viewerCustomerId } from '../auth/viewer.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { forbidden, InvalidInputError, RateLimitedError } from '../graphql/errors.js';
import { parseId } from '../graphql/ids.js';
import {
  type IWebhook,
  type IWebhookAttempt,
  type IWebhookMessage,
  Webhook,
  WebhookAttempt,
  WebhookMessage,
} from './webhook.entity.js';
import { WEBHOOK_EVENTS } from './webhook-events.js';
import { createWebhook, deleteWebhook, manageableWhere, redeliver } from './webhooks.js';

const DELIVERIES_MAX = 50;

const DeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  values: {
    PENDING: { value: 'pending', description: 'not delivered yet; nextRetryAt says when' },
    DELIVERED: { value: 'delivered' },
    FAILED: { value: 'failed', description: 'every attempt failed' },
  } as const,
});

const WebhookAttemptRef = builder.objectRef<IWebhookAttempt>('WebhookAttempt').implement({
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: '1 for the first' }),
    statusCode: t.int({ nullable: true, resolve: (a) => a.statusCode ?? null }),
    error: t.string({
      nullable: true,
      description: 'why it failed, when it did',
      resolve: (a) => a.error ?? null,
    }),
    durationMs: t.exposeInt('durationMs'),
    attemptedAt: t.field({ type: 'DateTime', resolve: (a) => a.attemptedAt }),
  }),
});

const WebhookDeliveryRef = builder.objectRef<IWebhookMessage>('WebhookDelivery').implement({
  description: 'One event sent to one webhook, with every attempt',
  fields: (t) => ({
    id: t.exposeID('id'),
    event: t.exposeString('event'),
    status: t.field({ type: DeliveryStatusEnum, resolve: (m) => m.status }),
    attempt: t.int({ description: 'attempts made', resolve: (m) => m.attempts }),
    statusCode: t.int({
      nullable: true,
      description: "the last attempt's answer",
      resolve: (m) => m.lastStatusCode ?? null,
    }),
    jobId: t.id({ nullable: true, resolve: (m) => m.jobId ?? null }),
    createdAt: t.field({ type: 'DateTime', resolve: (m) => m.createdAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (m) => m.finishedAt ?? null }),
    nextRetryAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (m) => (m.status === 'pending' ? (m.nextAttemptAt ?? null) : null),
    }),
    attempts: t.field({
      type: [WebhookAttemptRef],
      resolve: (m, _args, ctx) =>
        ctx.em.find(WebhookAttempt, { message: m.id }, { orderBy: { attempt: 'asc' } }),
    }),
  }),
});

const DeliveryPageRef = builder
  .objectRef<{ deliveries: IWebhookMessage[]; endCursor: string | null; hasMore: boolean }>(
    'WebhookDeliveryPage',
  )
  .implement({
    fields: (t) => ({
      deliveries: t.field({ type: [WebhookDeliveryRef], resolve: (p) => p.deliveries }),
      endCursor: t.string({ nullable: true, resolve: (p) => p.endCursor }),
      hasMore: t.exposeBoolean('hasMore'),
    }),
  });

export const WebhookRef = builder.objectRef<IWebhook>('Webhook').implement({
  description: 'Where events are sent (never the secret)',
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url'),
    events: t.stringList({ resolve: (w) => w.events.split(',') }),
    customerId: t.id({
      nullable: true,
      description: "null: every customer's events",
      resolve: (w) => (w.customer ? w.customer.id : null),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (w) => w.createdAt }),
    deliveries: t.field({
      type: DeliveryPageRef,
      description: 'newest first',
      args: {
        first: t.arg.int({ defaultValue: 20 }),
        after: t.arg.string({ description: 'the endCursor of the page before' }),
      },
      resolve: async (w, args, ctx) => {
        const limit = Math.min(DELIVERIES_MAX, Math.max(1, args.first ?? 20));
        const after = args.after ? parseId(args.after) : null;
        if (args.after && after === null) {
          throw new InvalidInputError('That is not a cursor.', 'after');
        }
        const rows = await ctx.em.find(
          WebhookMessage,
          { webhook: w.id, ...(after === null ? {} : { id: { $lt: after } }) },
          { orderBy: { id: 'desc' }, limit: limit + 1 },
        );
        const page = rows.slice(0, limit);
        return {
          deliveries: page,
          hasMore: rows.length > limit,
          endCursor: page.length > 0 ? String(page[page.length - 1]?.id) : null,
        };
      },
    }),
  }),
});

builder.objectField(CustomerRef, 'webhooks', (t) =>
  t.field({
    type: [WebhookRef],
    nullable: true,
    description:
      "the customer's own webhooks (an admin token sees every hook of that customer); null for anyone else",
    resolve: (customer, _args, ctx) => {
      const viewer = ctx.viewer;
      if (!viewer) return null;
      if (!hasAdminRights(viewer) && viewerCustomerId(viewer) !== customer.id) return null;
      return ctx.em.find(
        Webhook,
        { customer: customer.id, ...manageableWhere(viewer) },
        { orderBy: { id: 'asc' } },
      );
    },
  }),
);

builder.queryField('allCustomersWebhooks', (t) =>
  t.field({
    type: [WebhookRef],
    description: "admin tokens: the webhooks that receive every customer's events",
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) =>
      ctx.em.find(Webhook, { customer: null }, { orderBy: { id: 'asc' } }),
  }),
);

builder.queryField('webhookEvents', (t) =>
  t.stringList({
    description: 'every event a webhook can ask for',
    resolve: () => [...WEBHOOK_EVENTS],
  }),
);

const CreateWebhookSuccess = builder
  .objectRef<{ secret: string; webhook: IWebhook }>('CreateWebhookSuccess')
  .implement({
    fields: (t) => ({
      secret: t.exposeString('secret', {
        description: 'the signing secret (Standard Webhooks, whsec_...): shown once',
      }),
      webhook: t.field({ type: WebhookRef, resolve: (p) => p.webhook }),
    }),
  });

builder.mutationField('createWebhook', (t) =>
  t.field({
    type: CreateWebhookSuccess,
    description:
      "customers: for their own jobs; admin tokens: for customerId, or every customer's when it is left out",
    args: {
      url: t.arg.string({ required: true }),
      events: t.arg.stringList({ required: true }),
      customerId: t.arg.id(),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [InvalidInputError, RateLimitedError],
      directResult: true,
      union: { name: 'CreateWebhookResult' },
    },
    resolve: async (_root, args, ctx) => {
      const { config, limiter } = ctx.services;
      const own = viewerCustomerId(ctx.viewer);
      const actor = actorOf(ctx.viewer);
      const who = own !== null ? `c${own}` : `${actor.kind}:${actor.id}`;
      const decision = await limiter.hit(
        `webhooks:${who}`,
        config.BACKUPS_JOB_LIMIT_PER_CUSTOMER,
        config.BACKUPS_RATE_WINDOW_SECONDS,
      );
      if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds);
      return createWebhook(ctx.em, config, ctx.viewer, args, { ip: ctx.ip });
    },
  }),
);

builder.mutationField('deleteWebhook', (t) =>
  t.boolean({
    description: 'false when there is no such webhook of yours',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { signedIn: true },
    resolve: (_root, args, ctx) => {
      if (!ctx.viewer) throw forbidden();
      return deleteWebhook(ctx.em, ctx.viewer, String(args.id), { ip: ctx.ip });
    },
  }),
);

builder.mutationField('redeliverWebhook', (t) =>
  t.boolean({
    description:
      'one more attempt of a delivery, now; false when there is no such delivery of yours or one is under way',
    args: { deliveryId: t.arg.id({ required: true }) },
    authScopes: { signedIn: true },
    resolve: (_root, args, ctx) => {
      if (!ctx.viewer) throw forbidden();
      return redeliver(ctx.em, ctx.viewer, ctx.services.deliveries, String(args.deliveryId));
    },
  }),
);
