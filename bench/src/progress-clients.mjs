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
const clients = [];

function subscribe(client) {
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

const flush = setInterval(() => {
  if (pairs.length === 0) return;
  port.postMessage({ type: 'receipts', pairs });
  pairs = [];
}, 10);

port.on('message', (message) => {
  if (message?.type !== 'close') return;
  void Promise.allSettled(clients.map((c) => c.dispose())).then(() => {
    clearInterval(flush);
    port.postMessage({ type: 'closed' });
    port.close();
  });
});

try {
  for (let i = 0; i < input.count; i++) {
    clients.push(
      createClient({
        url: input.wsUrl,
        webSocketImpl: OriginWebSocket,
        connectionParams: { authorization: `Bearer ${input.token}` },
        retryAttempts: 0,
        lazy: true,
      }),
    );
  }
  // 25 subscribing at a time
  let next = 0;
  const lane = async () => {
    while (next < clients.length) await subscribe(clients[next++]);
  };
  await Promise.all(Array.from({ length: 25 }, lane));
  port.postMessage({ type: 'subscribed' });
} catch (error) {
  port.postMessage({
    type: 'failed',
    message: error instanceof Error ? error.message : String(error),
  });
}
