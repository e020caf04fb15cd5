import { GraphQLError } from './graphql-runtime.js';

/** The codes of the GraphQL `ErrorCode` enum: expected failures a program can act on. */
export const ERROR_CODES = [
  'JOB_IN_PROGRESS',
  'INVALID_INPUT',
  'NOT_FOUND',
  'CONFIRMATION_MISMATCH',
  'RATE_LIMITED',
  'INVALID_CREDENTIALS',
  'NOT_CANCELLABLE',
  'QUOTA_EXCEEDED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** An expected failure, returned as a member of a mutation's result union. */
export abstract class AppError extends Error {
  abstract readonly code: ErrorCode;
}

export class InvalidInputError extends AppError {
  readonly code = 'INVALID_INPUT';
  constructor(
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = 'InvalidInputError';
  }
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND';
  constructor(message = 'Not found.') {
    super(message);
    this.name = 'NotFoundError';
  }
}

export class RateLimitedError extends AppError {
  readonly code = 'RATE_LIMITED';
  constructor(readonly retryAfterSeconds: number) {
    super(`Too many attempts. Try again in ${retryAfterSeconds} seconds.`);
    this.name = 'RateLimitedError';
  }
}

/** Not signed in (or a bad token): a GraphQL error, not a union member. */
export function unauthenticated(message = 'Sign in first.'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED' } });
}

/** Signed in, but not allowed. */
export function forbidden(message = 'You may not do this.'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}
