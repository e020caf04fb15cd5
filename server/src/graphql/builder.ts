import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { hasAdminRights } from '../auth/viewer.js';
import type { GraphQLContext } from './context.js';
import { forbidden, unauthenticated } from './errors.js';

/** The schema builder: plugins, context and scalars' types. It defines no types itself. */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  AuthScopes: {
    /** any valid session or token */
    signedIn: boolean;
    /** a customer signed in with the session cookie (not a token) */
    sessionCustomer: boolean;
    /** an admin token */
    admin: boolean;
  };
  Scalars: {
    ID: { Input: string; Output: string | number };
    /** Output: a Date, or a string already ISO-8601 in UTC (the catalog listing's). */
    DateTime: { Input: Date; Output: Date | string };
    Bytes: { Input: number; Output: number };
  };
}>({
  // scope-auth first, so an unauthorised field never reaches the errors plugin's unions.
  plugins: [ScopeAuthPlugin, ErrorsPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (context) => ({
      signedIn: context.viewer !== null,
      sessionCustomer: context.viewer?.kind === 'customer',
      admin: hasAdminRights(context.viewer),
    }),
    unauthorizedError: (_parent, context) => (context.viewer ? forbidden() : unauthenticated()),
  },
  errors: { defaultTypes: [] },
});
