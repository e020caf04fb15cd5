import type { CombinedError } from '@urql/core';

export const NETWORK_ERROR_MESSAGE =
  "We couldn't reach the backup service. Check your connection and try again.";
const UNEXPECTED_MESSAGE = 'Something went wrong on our side. Please try again in a moment.';

interface Payload {
  __typename?: string;
  message?: string;
}

/**
 * The message to show for a mutation that did not succeed: the API's own message for errors
 * in the result union (written for customers), or a general one for transport failures.
 * Null when it succeeded.
 */
export function failureMessage(
  error: CombinedError | undefined,
  payload: Payload | null | undefined,
): string | null {
  if (payload && typeof payload.message === 'string' && payload.__typename?.endsWith('Error')) {
    return payload.message;
  }
  if (error) {
    if (error.networkError) return NETWORK_ERROR_MESSAGE;
    const code = error.graphQLErrors[0]?.extensions?.code;
    if (code === 'UNAUTHENTICATED') return 'Your session has ended. Please sign in again.';
    return UNEXPECTED_MESSAGE;
  }
  if (!payload) return UNEXPECTED_MESSAGE;
  return null;
}

export function queryErrorMessage(error: CombinedError | undefined): string | null {
  if (!error) return null;
  return error.networkError ? NETWORK_ERROR_MESSAGE : UNEXPECTED_MESSAGE;
}
