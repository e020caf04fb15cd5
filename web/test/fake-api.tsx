import { Client, type Exchange, makeErrorResult, makeResult, type Operation } from '@urql/core';
import { Provider } from '@urql/solid';
import { createSignal, type JSX } from 'solid-js';
import {
  filter,
  fromValue,
  makeSubject,
  map,
  merge,
  mergeMap,
  pipe,
  share,
  takeUntil,
} from 'wonka';
import { AppClientContext } from '../src/app-context';
import type { AppClient, LiveConnection } from '../src/graphql/client';
import type { Job } from '../src/graphql/documents';

type Variables = Record<string, unknown>;
type Data = Record<string, unknown>;
type Answer = { data?: Data; error?: Error };
type Handler = (variables: Variables, operation: Operation) => Answer | unknown;

/**
 * A stand-in for the network only: answers each operation by its name with fixed results and
 * delivers customerJobs events that the test pushes. Everything above the network is real.
 */
export function createFakeApi(handlers: Record<string, Handler>) {
  const jobs = makeSubject<Job>();
  const calls: { name: string; variables: Variables; requestPolicy: string }[] = [];
  const reconnectListeners = new Set<() => void>();
  const [connection, setConnection] = createSignal<LiveConnection>('online');
  const [sessionExpired, setSessionExpired] = createSignal(false);

  const nameOf = (operation: Operation) => {
    const definition = operation.query.definitions.find((d) => d.kind === 'OperationDefinition');
    return definition && 'name' in definition ? (definition.name?.value ?? '') : '';
  };

  const answer = (operation: Operation) => {
    const name = nameOf(operation);
    const variables = (operation.variables ?? {}) as Variables;
    calls.push({ name, variables, requestPolicy: operation.context.requestPolicy });
    const handler = handlers[name];
    if (!handler) return makeErrorResult(operation, new Error(`no fake answer for ${name}`));
    const result = handler(variables, operation);
    if (result && typeof result === 'object' && ('data' in result || 'error' in result)) {
      const { data, error } = result as Answer;
      return error ? makeErrorResult(operation, error) : makeResult(operation, { data });
    }
    return makeResult(operation, { data: result as Data });
  };

  const exchange: Exchange = () => (operations$) => {
    const shared = pipe(operations$, share);
    const teardown = (operation: Operation) =>
      pipe(
        shared,
        filter((op) => op.kind === 'teardown' && op.key === operation.key),
      );
    return merge([
      pipe(
        shared,
        filter((op) => op.kind === 'query' || op.kind === 'mutation'),
        mergeMap((op) => fromValue(answer(op))),
      ),
      pipe(
        shared,
        filter((op) => op.kind === 'subscription'),
        mergeMap((op) => {
          calls.push({ name: nameOf(op), variables: {}, requestPolicy: '' });
          return pipe(
            jobs.source,
            map((job) => makeResult(op, { data: { customerJobs: job } })),
            takeUntil(teardown(op)),
          );
        }),
      ),
    ]);
  };

  const client = new Client({ url: 'http://fake/graphql', exchanges: [exchange] });
  const appClient: AppClient = {
    client: () => client,
    renew: () => {},
    connection,
    sessionExpired,
    clearSessionExpired: () => setSessionExpired(false),
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
  };

  return {
    client,
    calls,
    callsOf: (name: string) => calls.filter((call) => call.name === name),
    pushJob: (job: Job) => jobs.next(job),
    reconnect: () => {
      setConnection('online');
      for (const listener of reconnectListeners) listener();
    },
    loseConnection: () => setConnection('offline'),
    /** What the real client does when the api answers UNAUTHENTICATED. */
    expireSession: () => setSessionExpired(true),
    Wrapper: (props: { children: JSX.Element }) => (
      <AppClientContext.Provider value={appClient}>
        <Provider value={client}>{props.children}</Provider>
      </AppClientContext.Provider>
    ),
  };
}
