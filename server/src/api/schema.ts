import type { GraphQLSchema } from 'graphql';
import { builder } from '../graphql/builder.js';
// The schema is assembled here, at the top: the builder (graphql/builder.ts) defines no types;
// each import registers its domain's types, queries, mutations and subscriptions.
import '../graphql/scalars.js';
import '../graphql/error.schema.js';
import '../customers/customer.schema.js';
import '../snapshots/snapshot.schema.js';
import '../jobs/job.schema.js';
import '../snapshots/verification.schema.js';
import '../snapshots/snapshot-index.schema.js';
import '../auth/auth.schema.js';
import '../auth/api-token.schema.js';
import '../webhooks/webhook.schema.js';
import '../notifications/notification.schema.js';
import '../auth/oidc.schema.js';
import '../staff/staff.schema.js';
import '../downloads/download.schema.js';

let built: GraphQLSchema | undefined;

/** The api's GraphQL schema, built once. */
export function apiSchema(): GraphQLSchema {
  built ??= builder.toSchema({ sortSchema: false });
  return built;
}
