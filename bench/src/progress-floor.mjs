// The floor of measurement 2: a bare ws server in a child process that does the least any
// server must do to deliver an event to its subscribers. It speaks just enough of
// graphql-transport-ws for the bench's clients (connection_init -> connection_ack, subscribe ->
// one `next` at once, ping -> pong), takes the event from Redis as the api does, and sends one
// frame, built once, to every socket subscribed to that job: no database, no authentication,
// no GraphQL execution, no per-socket serialisation. What the api takes beyond it is the api's.
// argv: redis URL, channel; prints the port once listening. A message on the channel is
// {"jobId": n, "bytesDone": n}.
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';

const [redisUrl, channel] = process.argv.slice(2);
if (!redisUrl || !channel) throw new Error('usage: progress-floor.mjs <redis url> <channel>');

/** jobId -> subscribed sockets and their subscription ids */
const subscribers = new Map();

const frame = (id, jobId, bytesDone) =>
  JSON.stringify({
    id,
    type: 'next',
    payload: { data: { jobUpdated: { id: String(jobId), status: 'RUNNING', bytesDone } } },
  });

const redis = new Redis(redisUrl, { lazyConnect: true });
await redis.connect();
await redis.subscribe(channel);

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    const message = JSON.parse(String(data));
    if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
    else if (message.type === 'ping') socket.send('{"type":"pong"}');
    else if (message.type === 'subscribe') {
      const jobId = String(message.payload?.variables?.id);
      let set = subscribers.get(jobId);
      if (!set) {
        set = new Set();
        subscribers.set(jobId, set);
      }
      const entry = { socket, id: message.id };
      set.add(entry);
      socket.once('close', () => set.delete(entry));
      socket.send(frame(message.id, jobId, 0));
    }
  });
});

redis.on('message', (_channel, text) => {
  const { jobId, bytesDone } = JSON.parse(text);
  const set = subscribers.get(String(jobId));
  if (!set) return;
  // The bench's clients all use subscription id "1": one buffer for every socket.
  const shared = Buffer.from(frame('1', jobId, bytesDone));
  for (const { socket, id } of set) socket.send(id === '1' ? shared : frame(id, jobId, bytesDone));
});

wss.on('listening', () => console.log(wss.address().port));
process.on('SIGTERM', () => {
  for (const socket of wss.clients) socket.terminate();
  wss.close();
  void redis.quit().finally(() => process.exit(0));
});
