import type { GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
// Each import registers its domain's types, queries, mutations and subscriptions.
import './scalars.js';
import './enums.js';
import './error.schema.js';
import '../customers/customer.schema.js';
import '../snapshots/snapshot.schema.js';
import '../jobs/job.schema.js';
import '../auth/auth.schema.js';
import '../auth/api-token.schema.js';

let built: GraphQLSchema | undefined;

/** The api's GraphQL schema, built once. */
export function apiSchema(): GraphQLSchema {
  built ??= builder.toSchema({ sortSchema: false });
  return built;
}
