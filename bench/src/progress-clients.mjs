// A worker thread of measurement 2 (plain JavaScript: tsx's loader does not reach worker
// threads on Node 20). It opens its share of the graphql-ws subscribers and reports which stamp
// (bytesDone) each received and when. 1,000 clients in one thread decode their frames one after
// the other, so the last ones would be stamped late by the bench's own queue, not by the api;
// spread over threads they are not. Times are process.hrtime in µs, one monotonic clock for
// every thread of the process. Messages: see ClientsInput / ClientsMessage in progress.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const input = workerData;
const port = parentPort;
if (!port) throw new Error('progress-clients runs as a worker thread');
const hrMicros = () => Number(process.hrtime.bigint() / 1000n);

class OriginWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, { headers: { origin: input.origin } });
  }
}

/** [stamp, receivedAt, stamp, receivedAt, ...] not yet reported */
let pairs = [];
/** how to close each client */
const clients = [];

/** With graphql-ws's own client (BENCH_PROGRESS_CLIENT=graphql-ws). */
function libraryClient() {
  const client = createClient({
    url: input.wsUrl,
    webSocketImpl: OriginWebSocket,
    connectionParams: { authorization: `Bearer ${input.token}` },
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(() => client.dispose());
  return new Promise((resolve, reject) => {
    let first = true;
    client.subscribe(
      { query: input.query, variables: { id: String(input.jobId) } },
      {
        next: (result) => {
          const at = hrMicros();
          if (first) {
            first = false;
            resolve();
          }
          const stamp = result.data?.jobUpdated?.bytesDone;
          if (stamp !== null && stamp !== undefined) pairs.push(stamp, at);
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => undefined,
      },
    );
  });
}

/**
 * The same protocol (graphql-transport-ws) spoken directly over ws: connection_init with the
 * token, subscribe, then each `next` is stamped on arrival, before it is parsed. It costs the
 * bench less CPU per frame than graphql-ws's client (message validation, listeners), CPU the
 * api would otherwise lose on a small machine.
 */
function leanClient() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(input.wsUrl, 'graphql-transport-ws', {
      headers: { origin: input.origin },
      perMessageDeflate: false,
    });
    clients.push(
      () =>
        new Promise((done) => {
          if (socket.readyState === WebSocket.CLOSED) return done();
          socket.once('close', () => done());
          socket.close(1000, 'Normal Closure');
        }),
    );
    let first = true;
    const fail = (error) => {
      if (first) reject(error);
    };
    socket.on('error', fail);
    socket.on('close', (code, reason) => fail(new Error(`closed ${code} ${reason}`)));
    socket.on('open', () =>
      socket.send(
        JSON.stringify({
          type: 'connection_init',
          payload: { authorization: `Bearer ${input.token}` },
        }),
      ),
    );
    socket.on('message', (data) => {
      const at = hrMicros();
      const message = JSON.parse(String(data));
      switch (message.type) {
        case 'next': {
          if (first) {
            first = false;
            resolve();
          }
          const stamp = message.payload?.data?.jobUpdated?.bytesDone;
          if (stamp !== null && stamp !== undefined) pairs.push(stamp, at);
          return;
        }
        case 'connection_ack':
          socket.send(
            JSON.stringify({
              id: '1',
              type: 'subscribe',
              payload: { query: input.query, variables: { id: String(input.jobId) } },
            }),
          );
          return;
        case 'ping':
          socket.send(JSON.stringify({ type: 'pong' }));
          return;
        case 'error':
          fail(new Error(JSON.stringify(message.payload)));
          return;
        default:
          return;
      }
    });
  });
}

const subscribe = input.client === 'graphql-ws' ? libraryClient : leanClient;

const flush = setInterval(() => {
  if (pairs.length === 0) return;
  port.postMessage({ type: 'receipts', pairs });
  pairs = [];
}, 10);

port.on('message', (message) => {
  if (message?.type !== 'close') return;
  void Promise.allSettled(clients.map((close) => close())).then(() => {
    clearInterval(flush);
    port.postMessage({ type: 'closed' });
    port.close();
  });
});

try {
  // 25 subscribing at a time
  let started = 0;
  const lane = async () => {
    while (started < input.count) {
      started++;
      await subscribe();
    }
  };
  await Promise.all(Array.from({ length: 25 }, lane));
  port.postMessage({ type: 'subscribed' });
} catch (error) {
  port.postMessage({
    type: 'failed',
    message: error instanceof Error ? error.message : String(error),
  });
}
