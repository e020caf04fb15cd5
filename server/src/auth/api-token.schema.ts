import { recordAudit } from '../audit/audit.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { InvalidInputError, RateLimitedError } from '../graphql/errors.js';
import { parseId } from '../graphql/ids.js';
import type { IApiToken } from './api-token.entity.js';
import {
  createCustomerApiToken,
  listCustomerApiTokens,
  revokeCustomerApiToken,
} from './api-tokens.js';
import { apiCredentialEvents } from './credential-events.js';
import { actorOf, viewerCustomerId } from './viewer.js';

const ApiTokenRef = builder.objectRef<IApiToken>('ApiToken').implement({
  description: 'A bearer token for integrations (never the secret)',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', {
      description: 'the first characters of the token, to tell tokens apart',
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (token) => token.createdAt }),
    lastUsedAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (token) => token.lastUsedAt ?? null,
    }),
  }),
});

builder.objectField(CustomerRef, 'apiTokens', (t) =>
  t.field({
    type: [ApiTokenRef],
    nullable: true,
    description:
      "the customer's API tokens (never the secret); null unless the viewer is the customer",
    resolve: (customer, _args, ctx) =>
      viewerCustomerId(ctx.viewer) === customer.id
        ? listCustomerApiTokens(ctx.em, customer.id)
        : null,
  }),
);

const CreateApiTokenSuccess = builder
  .objectRef<{ token: string; apiToken: IApiToken }>('CreateApiTokenSuccess')
  .implement({
    fields: (t) => ({
      token: t.exposeString('token', { description: 'shown once' }),
      apiToken: t.field({ type: ApiTokenRef, resolve: (p) => p.apiToken }),
    }),
  });

builder.mutationField('createApiToken', (t) =>
  t.field({
    type: CreateApiTokenSuccess,
    description: 'the token is shown once; a signed-in customer (session) only',
    args: { name: t.arg.string({ required: true }) },
    authScopes: { sessionCustomer: true },
    errors: {
      types: [InvalidInputError, RateLimitedError],
      directResult: true,
      union: { name: 'CreateApiTokenResult' },
    },
    resolve: async (_root, args, ctx) => {
      const customerId = viewerCustomerId(ctx.viewer);
      if (customerId === null) throw new Error('createApiToken without a customer');
      const { config, limiter } = ctx.services;
      const decision = await limiter.hit(
        `tokens:${customerId}`,
        config.BACKUPS_JOB_LIMIT_PER_CUSTOMER,
        config.BACKUPS_RATE_WINDOW_SECONDS,
      );
      if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds);
      const created = await createCustomerApiToken(ctx.em, customerId, args.name);
      await recordAudit(ctx.em, {
        action: 'token_created',
        actor: actorOf(ctx.viewer),
        customerId,
        targetId: created.apiToken.id,
        ip: ctx.ip,
        details: { name: created.apiToken.name, prefix: created.apiToken.prefix },
      });
      return created;
    },
  }),
);

builder.mutationField('revokeApiToken', (t) =>
  t.boolean({
    description: 'revokes one of your own tokens; false when there is no such live token',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { sessionCustomer: true },
    resolve: async (_root, args, ctx) => {
      const customerId = viewerCustomerId(ctx.viewer);
      const tokenId = parseId(args.id);
      if (customerId === null || tokenId === null) return false;
      const revoked = await revokeCustomerApiToken(
        ctx.em,
        customerId,
        tokenId,
        apiCredentialEvents(ctx.services),
      );
      if (revoked) {
        await recordAudit(ctx.em, {
          action: 'token_revoked',
          actor: actorOf(ctx.viewer),
          customerId,
          targetId: tokenId,
          ip: ctx.ip,
        });
      }
      return revoked;
    },
  }),
);
