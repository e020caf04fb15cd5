import { createRequire } from 'node:module';
import type { DocumentNode, ExecutionArgs, ExecutionResult, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { hasAdminRights, type Viewer, viewerCustomerId } from '../auth/viewer.js';
import type { GraphQLContext } from '../graphql/context.js';

// The CommonJS graphql that Pothos built the schema with (see graphql/graphql-runtime.ts).
const graphql: typeof import('graphql') = createRequire(import.meta.url)('graphql');

type MaybePromise<T> = T | Promise<T>;

/** yoga's masking of an error a client may not see (an unexpected one) into 'Unexpected error.'. */
export type MaskError = (error: unknown) => Error;

/** A result with its errors masked, as useMaskedErrors does to each result. */
function maskResult(result: ExecutionResult, mask: MaskError): ExecutionResult {
  if (result.errors == null) return result;
  return { ...result, errors: result.errors.map((error) => mask(error) as GraphQLError) };
}

/** An error that ends a stream: an AbortError as it is (as yoga does), any other masked. */
function maskStreamError(error: unknown, mask: MaskError): unknown {
  return isAbortError(error) ? error : mask(error);
}

/** graphql-yoga's test for an aborted request (a DOMException named AbortError or TimeoutError). */
function isAbortError(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    error.constructor?.name === 'DOMException' &&
    ((error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError')
  );
}

/** Who may see what: subscribers with the same rights get the same execution of an event. */
function rightsKey(viewer: Viewer | null | undefined): string {
  if (!viewer) return '-';
  return hasAdminRights(viewer) ? 'admin' : `customer:${viewerCustomerId(viewer)}`;
}

const documentIds = new WeakMap<DocumentNode, number>();
let lastDocumentId = 0;

function documentId(document: DocumentNode): number {
  let id = documentIds.get(document);
  if (id === undefined) {
    id = ++lastDocumentId;
    documentIds.set(document, id);
  }
  return id;
}

/** event object -> (operation key -> its execution), dropped with the event. */
const executions = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

/**
 * A subscriber's stream of results: its source's events (the job feed's), each executed by
 * `run` (shared with the other subscribers of the operation). An async generator for
 * graphql-ws, and beside it the parts for a consumer that writes the frames itself
 * (api/socket-subscription.ts): `nextEvent`, `result` and `maskEnd`.
 */
export class SharedStream implements AsyncGenerator<ExecutionResult, undefined, unknown> {
  private readonly events: AsyncIterator<unknown>;

  constructor(
    source: AsyncIterable<unknown>,
    private readonly run: (event: unknown) => MaybePromise<ExecutionResult>,
    private readonly mask: MaskError,
  ) {
    this.events = source[Symbol.asyncIterator]();
  }

  /** The source's next event, not yet executed. */
  nextEvent(): Promise<IteratorResult<unknown>> {
    return this.events.next();
  }

  /** An event's result (its shared execution, errors masked); may throw, see maskEnd. */
  result(event: unknown): MaybePromise<ExecutionResult> {
    return this.run(event);
  }

  /** What a client sees of an error that ends the stream (of nextEvent, or of result). */
  maskEnd(error: unknown): unknown {
    return maskStreamError(error, this.mask);
  }

  // One promise hop per event where the execution is synchronous (a job's fields are): with
  // a thousand subscribers of one job, every hop here is a thousand more microtasks queued
  // before the first frame leaves, since their chains advance side by side.
  next(): Promise<IteratorResult<ExecutionResult, undefined>> {
    return this.events.next().then(
      (step): MaybePromise<IteratorResult<ExecutionResult, undefined>> => {
        if (step.done) return { value: undefined, done: true };
        let result: MaybePromise<ExecutionResult>;
        try {
          result = this.run(step.value);
        } catch (error) {
          throw this.maskEnd(error);
        }
        return result instanceof Promise
          ? result.then(
              (value) => ({ value, done: false }),
              (error: unknown) => {
                throw this.maskEnd(error);
              },
            )
          : { value: result, done: false };
      },
      (error: unknown) => {
        throw this.maskEnd(error);
      },
    );
  }

  async return(): Promise<IteratorResult<ExecutionResult, undefined>> {
    await this.events.return?.();
    return { value: undefined, done: true };
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult, undefined>> {
    await this.events.return?.();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * A subscription whose events are executed once for everyone: the job feed hands the same
 * event object to all subscribers of a job that may see it, so subscribers with the same
 * document, variables and rights (admin, or the customer) share one execution of the selection
 * set per event instead of running it each. Resolvers below a subscription field therefore
 * must depend only on the event and on those rights, never on which session or token asks
 * (true of BackupJob's fields: the job, and its customer's catalog). Events that are not
 * objects, or not shared, execute as usual.
 */
function sharedSubscribe(
  args: ExecutionArgs,
  mask: MaskError,
): MaybePromise<SharedStream | ExecutionResult> {
  const context = args.contextValue as GraphQLContext | undefined;
  const key = [
    documentId(args.document),
    args.operationName ?? '',
    JSON.stringify(args.variableValues ?? {}),
    rightsKey(context?.viewer),
  ].join('\u0000');

  const execute = (event: unknown): MaybePromise<ExecutionResult> => {
    const result = graphql.execute({ ...args, rootValue: event });
    return result instanceof Promise
      ? result.then((value) => maskResult(value, mask))
      : maskResult(result, mask);
  };
  const run = (event: unknown): MaybePromise<ExecutionResult> => {
    if (event === null || typeof event !== 'object') return execute(event);
    let byKey = executions.get(event);
    if (!byKey) {
      byKey = new Map();
      executions.set(event, byKey);
    }
    let result = byKey.get(key);
    if (result === undefined) {
      result = execute(event);
      byKey.set(key, result);
    }
    return result;
  };

  const source = graphql.createSourceEventStream(args);
  if (source instanceof Promise) {
    return source.then((resolved) =>
      isAsyncIterable(resolved)
        ? new SharedStream(resolved, run, mask)
        : maskResult(resolved as ExecutionResult, mask),
    );
  }
  return isAsyncIterable(source)
    ? new SharedStream(source, run, mask)
    : maskResult(source as ExecutionResult, mask);
}

/**
 * Subscriptions run through sharedSubscribe, which yoga's error masking then reaches once per
 * shared execution instead of once per subscriber. One of yoga's plugins (yoga.ts), after
 * graphql-jit (whose subscribe it replaces) and the metrics; only WebSocket operations reach
 * it, since HTTP refuses subscriptions before they run. It ends the onSubscribe hooks with the
 * stream as the result, so the plugins after it (yoga's own: the AbortError pass-through and
 * useMaskedErrors) wrap no subscriber's stream: each wrapper was two more promise hops and
 * their closures per event and subscriber (with 1,000 subscribers of one job, 2,000 more
 * microtasks queued before the first frame leaves). What they did is done here with the same
 * function (`mask`, yoga's maskError): every result's errors masked (a stream's events, or the
 * single result of a refused subscribe), and an error that ends a stream masked unless it is an
 * AbortError. Everything else stays as yoga's (parse and validation caches, armor, context).
 */
export function useSharedSubscriptionEvents(mask: MaskError): Plugin {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      setResultAndStopExecution(sharedSubscribe(args, mask) as never);
    },
  };
}
