import { builder } from './builder.js';
import { GraphQLError, Kind } from './graphql-runtime.js';

builder.scalarType('DateTime', {
  description: 'ISO-8601 date and time, in UTC',
  // A string is already ISO-8601 in UTC (catalog-read.ts hands the listing's times so).
  serialize: (value) => (typeof value === 'string' ? value : value.toISOString()),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) throw new GraphQLError('Expected an ISO-8601 date');
    return date;
  },
});

builder.scalarType('Bytes', {
  description: 'A byte count, as a JSON number (may exceed 2^31)',
  serialize: (value) => value,
  parseValue: (value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new GraphQLError('Expected a byte count');
    }
    return value;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.INT) throw new GraphQLError('Expected a byte count');
    return Number(ast.value);
  },
});
