import { recordAudit } from '../audit/audit.js';
import type { ICustomer } from '../customers/customer.entity.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { ErrorInterface } from '../graphql/error.schema.js';
import { InvalidInputError, RateLimitedError } from '../graphql/errors.js';
import { InvalidCredentialsError } from './auth-errors.js';
import { apiCredentialEvents } from './credential-events.js';
import { clearedSessionCookie, deleteSession, secureCookies, sessionCookie } from './sessions.js';
import { signIn } from './sign-in.js';
import { actorOf, viewerCustomerId } from './viewer.js';

builder.objectType(InvalidCredentialsError, {
  name: 'InvalidCredentialsError',
  interfaces: [ErrorInterface],
});

const SignInSuccess = builder.objectRef<{ customer: ICustomer }>('SignInSuccess').implement({
  fields: (t) => ({ customer: t.field({ type: CustomerRef, resolve: (p) => p.customer }) }),
});

builder.mutationField('signIn', (t) =>
  t.field({
    type: SignInSuccess,
    description: 'sets an HttpOnly session cookie',
    args: {
      email: t.arg.string({ required: true }),
      password: t.arg.string({ required: true }),
    },
    errors: {
      types: [InvalidCredentialsError, RateLimitedError, InvalidInputError],
      directResult: true,
      union: { name: 'SignInResult' },
    },
    resolve: async (_root, args, ctx) => {
      const { config } = ctx.services;
      const { customer, token } = await signIn(
        { em: ctx.em, limiter: ctx.services.limiter, config },
        { email: args.email, password: args.password, ip: ctx.ip, userAgent: ctx.userAgent },
      );
      ctx.setCookie(
        sessionCookie(token, config.BACKUPS_SESSION_DAYS * 86_400, {
          secure: secureCookies(config.BACKUPS_PUBLIC_URL),
        }),
      );
      return { customer };
    },
  }),
);

builder.mutationField('signOut', (t) =>
  t.boolean({
    description: 'ends the session of this cookie; true when there was one',
    resolve: async (_root, _args, ctx) => {
      ctx.setCookie(
        clearedSessionCookie({ secure: secureCookies(ctx.services.config.BACKUPS_PUBLIC_URL) }),
      );
      const viewer = ctx.viewer;
      if (viewer?.kind !== 'customer' && viewer?.kind !== 'staff') return false;
      await deleteSession(ctx.em, viewer.sessionId, apiCredentialEvents(ctx.services));
      await recordAudit(ctx.em, {
        action: 'sign_out',
        actor: actorOf(viewer),
        customerId: viewerCustomerId(viewer),
        ip: ctx.ip,
      });
      return true;
    },
  }),
);
