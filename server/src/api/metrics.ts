import { createRequire } from 'node:module';
import type { DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

// The CommonJS graphql that Pothos built the schema with (see graphql/graphql-runtime.ts).
const { getOperationAST }: typeof import('graphql') = createRequire(import.meta.url)('graphql');

/**
 * Prometheus metrics of an api process: requests, GraphQL operations, WebSockets, live
 * subscriptions and how long a job's change takes from the worker's publish to the
 * subscribers. Labels are bounded: routes, status codes, and root fields of validated
 * operations (fields of the schema, never what a client typed). No customer, token or session.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'backups_api_http_requests_total',
    help: 'HTTP requests answered, by route and status code',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: 'backups_api_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly operations = new Counter({
    name: 'backups_api_graphql_operations_total',
    help: 'GraphQL operations run (HTTP and WebSocket), by type and root field',
    labelNames: ['type', 'field'],
    registers: [this.registry],
  });
  private readonly sockets = new Gauge({
    name: 'backups_api_websocket_connections',
    help: 'Open WebSocket connections',
    registers: [this.registry],
  });
  private readonly subscriptions = new Gauge({
    name: 'backups_api_subscriptions',
    help: 'Live GraphQL subscriptions, by field',
    labelNames: ['field'],
    registers: [this.registry],
  });
  private readonly delivery = new Histogram({
    name: 'backups_api_job_event_delivery_seconds',
    help: "From a job change published (worker, api, CLI) to its state handed to this process's subscribers, by feed",
    labelNames: ['feed'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor() {
    // Present from the start, so a dashboard shows 0 rather than nothing.
    this.sockets.set(0);
  }

  answered(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.requestSeconds.observe({ route }, seconds);
  }

  socketOpened(): void {
    this.sockets.inc();
  }

  socketClosed(): void {
    this.sockets.dec();
  }

  subscriptionStarted(field: string): void {
    this.subscriptions.inc({ field });
  }

  subscriptionEnded(field: string): void {
    this.subscriptions.dec({ field });
  }

  /** `publishedAt`: the publish time the change carries (ms); older publishers send none. */
  delivered(feed: 'job' | 'customer', publishedAt: number | undefined): void {
    if (publishedAt === undefined) return;
    this.delivery.observe({ feed }, Math.max(0, Date.now() - publishedAt) / 1000);
  }

  /** Counts validated operations by type and root field (a yoga plugin). */
  plugin(): Plugin {
    const count = (document: DocumentNode, operationName: string | null | undefined) => {
      const operation = getOperationAST(document, operationName);
      if (!operation) return;
      this.operations.inc({ type: operation.operation, field: rootField(document, operationName) });
    };
    return {
      onExecute: ({ args }) => count(args.document, args.operationName),
      onSubscribe: ({ args }) => count(args.document, args.operationName),
    };
  }
}

/** The first root field of a validated operation ('' when there is none). */
export function rootField(document: DocumentNode, operationName?: string | null): string {
  const operation = getOperationAST(document, operationName);
  const first = operation?.selectionSet.selections[0];
  return first?.kind === 'Field' ? first.name.value : '';
}
