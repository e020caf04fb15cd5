import { createRequire } from 'node:module';
import type { DocumentNode, ExecutionArgs, ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { hasAdminRights, type Viewer, viewerCustomerId } from '../auth/viewer.js';
import type { GraphQLContext } from '../graphql/context.js';

// The CommonJS graphql that Pothos built the schema with (see graphql/graphql-runtime.ts).
const graphql: typeof import('graphql') = createRequire(import.meta.url)('graphql');

type MaybePromise<T> = T | Promise<T>;

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
): MaybePromise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
  const context = args.contextValue as GraphQLContext | undefined;
  const key = [
    documentId(args.document),
    args.operationName ?? '',
    JSON.stringify(args.variableValues ?? {}),
    rightsKey(context?.viewer),
  ].join('\u0000');

  const run = (event: unknown): MaybePromise<ExecutionResult> => {
    if (event === null || typeof event !== 'object') {
      return graphql.execute({ ...args, rootValue: event });
    }
    let byKey = executions.get(event);
    if (!byKey) {
      byKey = new Map();
      executions.set(event, byKey);
    }
    let result = byKey.get(key);
    if (result === undefined) {
      result = graphql.execute({ ...args, rootValue: event });
      byKey.set(key, result);
    }
    return result;
  };

  const mapStream = (
    source: AsyncIterable<unknown>,
  ): AsyncGenerator<ExecutionResult, undefined, unknown> => {
    const events = source[Symbol.asyncIterator]();
    const finish = async (): Promise<IteratorResult<ExecutionResult, undefined>> => {
      await events.return?.();
      return { value: undefined, done: true };
    };
    // One promise hop per event where the execution is synchronous (a job's fields are): with
    // a thousand subscribers of one job, every hop here is a thousand more microtasks queued
    // before the first frame leaves, since their chains advance side by side.
    const stream: AsyncGenerator<ExecutionResult, undefined, unknown> = {
      next() {
        return events
          .next()
          .then((step): MaybePromise<IteratorResult<ExecutionResult, undefined>> => {
            if (step.done) return { value: undefined, done: true };
            const result = run(step.value);
            return result instanceof Promise
              ? result.then((value) => ({ value, done: false }))
              : { value: result, done: false };
          });
      },
      return: finish,
      async throw(error: unknown) {
        await events.return?.();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return stream;
      },
    };
    return stream;
  };

  const source = graphql.createSourceEventStream(args);
  if (source instanceof Promise) {
    return source.then((resolved) =>
      isAsyncIterable(resolved) ? mapStream(resolved) : (resolved as ExecutionResult),
    );
  }
  return isAsyncIterable(source) ? mapStream(source) : (source as ExecutionResult);
}

/**
 * Subscriptions run through sharedSubscribe. One of yoga's plugins (yoga.ts), after graphql-jit
 * whose subscribe it replaces; only WebSocket operations reach it, since HTTP refuses
 * subscriptions before they run. Everything else stays as yoga's (parse and validation caches,
 * armor, error masking of each result).
 */
export function useSharedSubscriptionEvents(): Plugin {
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(sharedSubscribe as never);
    },
  };
}
