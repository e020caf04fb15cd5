import { createRequire } from 'node:module';

/**
 * The `graphql` package, loaded the way Node loads it for graphql-yoga and Pothos (CommonJS).
 * Vite-based tools (vitest) would otherwise resolve our own imports to graphql's ESM build: a
 * second copy whose GraphQLError yoga does not recognise (it then masks every error).
 */
const graphql: typeof import('graphql') = createRequire(import.meta.url)('graphql');

export const { GraphQLError, Kind, printSchema } = graphql;
export type GraphQLError = import('graphql').GraphQLError;
