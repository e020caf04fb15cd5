import { builder } from './builder.js';
import { ERROR_CODES, InvalidInputError, NotFoundError, RateLimitedError } from './errors.js';

export const ErrorCodeEnum = builder.enumType('ErrorCode', { values: ERROR_CODES });

/** Every expected failure in a mutation's result union implements this. */
export const ErrorInterface = builder.interfaceRef<{ code: string; message: string }>('Error');
ErrorInterface.implement({
  fields: (t) => ({
    code: t.field({
      type: ErrorCodeEnum,
      resolve: (error) => error.code as (typeof ERROR_CODES)[number],
    }),
    message: t.exposeString('message'),
  }),
});

builder.objectType(InvalidInputError, {
  name: 'InvalidInputError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    field: t.exposeString('field', { nullable: true, description: 'the argument at fault' }),
  }),
});

builder.objectType(NotFoundError, { name: 'NotFoundError', interfaces: [ErrorInterface] });

builder.objectType(RateLimitedError, {
  name: 'RateLimitedError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ retryAfterSeconds: t.exposeInt('retryAfterSeconds') }),
});
