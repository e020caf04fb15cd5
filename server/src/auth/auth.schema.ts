import type { ObjectRef, SchemaTypes } from '@pothos/core';
import { recordAudit } from '../audit/audit.js';
import type { Config } from '../config/config.js';
import type { ICustomer } from '../customers/customer.entity.js';
import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { ErrorInterface } from '../graphql/error.schema.js';
import { InvalidInputError, RateLimitedError } from '../graphql/errors.js';
import type { IStaffAccount } from '../staff/staff-account.entity.js';
import { InvalidCredentialsError } from './auth-errors.js';
import { apiCredentialEvents } from './credential-events.js';
import { clearedSessionCookie, deleteSession, secureCookies, sessionCookie } from './sessions.js';
import { type SignInDeps, type SignInInput, signIn } from './sign-in.js';
import { actorOf, viewerCustomerId } from './viewer.js';

builder.objectType(InvalidCredentialsError, {
  name: 'InvalidCredentialsError',
  interfaces: [ErrorInterface],
});

const SignInSuccess = builder.objectRef<{ customer: ICustomer }>('SignInSuccess').implement({
  fields: (t) => ({ customer: t.field({ type: CustomerRef, resolve: (p) => p.customer }) }),
});

type BuilderTypes =
  typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T extends SchemaTypes> ? T : never;

/** Who a sign-in signed in (the success types' parent). */
interface SignedIn {
  customer?: ICustomer;
  staff?: IStaffAccount;
}

/**
 * A password sign-in mutation (customers' `signIn`, staff's `staffSignIn`): the same arguments,
 * errors and HttpOnly session cookie; `check` verifies the password and opens the session.
 */
export function passwordSignInField(options: {
  name: string;
  union: string;
  description: string;
  type: ObjectRef<BuilderTypes, SignedIn>;
  cookieSeconds: (config: Config) => number;
  check: (deps: SignInDeps, input: SignInInput) => Promise<SignedIn & { token: string }>;
}): void {
  builder.mutationField(options.name, (t) =>
    t.field({
      type: options.type,
      description: options.description,
      args: {
        email: t.arg.string({ required: true }),
        password: t.arg.string({ required: true }),
      },
      errors: {
        types: [InvalidCredentialsError, RateLimitedError, InvalidInputError],
        directResult: true,
        union: { name: options.union },
      },
      resolve: async (_root, args, ctx) => {
        const { config } = ctx.services;
        const { token, ...result } = await options.check(
          { em: ctx.em, limiter: ctx.services.limiter, config },
          { email: args.email, password: args.password, ip: ctx.ip, userAgent: ctx.userAgent },
        );
        ctx.setCookie(
          sessionCookie(token, options.cookieSeconds(config), {
            secure: secureCookies(config.BACKUPS_PUBLIC_URL),
          }),
        );
        return result;
      },
    }),
  );
}

passwordSignInField({
  name: 'signIn',
  union: 'SignInResult',
  description: 'sets an HttpOnly session cookie',
  type: SignInSuccess,
  cookieSeconds: (config) => config.BACKUPS_SESSION_DAYS * 86_400,
  check: signIn,
});

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
