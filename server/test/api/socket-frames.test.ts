import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildJob, buildSignInCustomer, customerToken, updateJob } from './support/factories.js';
import { quietPeriod, startTestApi, type TestApi, within } from './support/test-api.js';

const JOB_UPDATED = 'subscription($id: ID!) { jobUpdated(id: $id) { id status phase } }';

interface Frame {
  text: string;
  binary: boolean;
}

/**
 * A bare graphql-ws socket, acknowledged, recording every frame as it came over the wire: what
 * a browser's WebSocket hands the web app (a binary frame would reach it as a Blob).
 */
async function openAcknowledged(url: string, token: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const frames: Frame[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  socket.on('message', (data, binary) => {
    frames.push({ text: String(data), binary });
    for (const waiter of waiters) if (frames.length >= waiter.count) waiter.resolve();
  });
  await once(socket, 'open');
  socket.send(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
  );
  const waitFor = (count: number) =>
    within(
      new Promise<void>((resolve) => {
        if (frames.length >= count) resolve();
        else waiters.push({ count, resolve });
      }),
      5000,
    );
  await waitFor(1);
  return { socket, frames, waitFor };
}

/** The `next` message graphql-ws's protocol defines, as JSON.stringify writes it. */
function next(id: string, jobUpdated: Record<string, unknown>): string {
  return JSON.stringify({ id, type: 'next', payload: { data: { jobUpdated } } });
}

describe('shared subscriptions on the wire (api/socket-subscription.ts)', () => {
  let db: TestDatabase;
  let api: TestApi;
  let customer: ICustomer;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db });
    customer = await buildSignInCustomer(db.orm.em);
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it("every subscriber gets graphql-ws's exact text frames under its own operation id, then complete; a client's complete ends only its own", async () => {
    const job = await buildJob(db.orm.em, customer, { status: 'running' });
    const id = String(job.id);
    const token = await customerToken(db.orm.em, customer);
    const one = await openAcknowledged(api.wsUrl, token);
    const two = await openAcknowledged(api.wsUrl, token);
    const subscribe = (socket: WebSocket, operationId: string) =>
      socket.send(
        JSON.stringify({
          id: operationId,
          type: 'subscribe',
          payload: { query: JOB_UPDATED, variables: { id } },
        }),
      );
    // Ids that need escaping, and the same id on two sockets.
    const quoted = 'q"\\1';
    subscribe(one.socket, 'a');
    subscribe(one.socket, quoted);
    subscribe(two.socket, 'a');
    subscribe(two.socket, 'stopped');
    await one.waitFor(3);
    await two.waitFor(3);

    two.socket.send(JSON.stringify({ id: 'stopped', type: 'complete' }));
    await quietPeriod(200);
    await updateJob(db.orm.em, job.id, { phase: 'UPLOADING' });
    await api.publish({ id: job.id, customerId: customer.id });
    await one.waitFor(5);
    await two.waitFor(4);
    await updateJob(db.orm.em, job.id, { status: 'completed', finishedAt: new Date() });
    await api.publish({ id: job.id, customerId: customer.id });
    await one.waitFor(9);
    await two.waitFor(6);
    await quietPeriod();

    const running = { id, status: 'RUNNING', phase: null };
    const uploading = { id, status: 'RUNNING', phase: 'UPLOADING' };
    const completed = { id, status: 'COMPLETED', phase: 'UPLOADING' };
    const ack = JSON.stringify({ type: 'connection_ack' });
    const complete = (operationId: string) => JSON.stringify({ id: operationId, type: 'complete' });
    // An operation that saw every event: three next frames, then complete.
    const whole = (operationId: string) => [
      next(operationId, running),
      next(operationId, uploading),
      next(operationId, completed),
      complete(operationId),
    ];
    expect(one.frames.every((frame) => !frame.binary)).toBe(true);
    expect(two.frames.every((frame) => !frame.binary)).toBe(true);
    // Per operation, in order (two operations of a socket may interleave).
    const of = (frames: Frame[], operationId: string) =>
      frames.map((frame) => frame.text).filter((text) => JSON.parse(text).id === operationId);
    expect(one.frames[0]?.text).toBe(ack);
    expect(of(one.frames, 'a')).toEqual(whole('a'));
    expect(of(one.frames, quoted)).toEqual(whole(quoted));
    expect(two.frames[0]?.text).toBe(ack);
    expect(of(two.frames, 'a')).toEqual(whole('a'));
    // Ended by the client: no complete back (the protocol), and nothing after it.
    expect(of(two.frames, 'stopped')).toEqual([next('stopped', running)]);
    one.socket.close();
    two.socket.close();
  });
});
