import type { ExecutionResult } from 'graphql';
import type { WebSocket } from 'ws';
import type { SharedStream } from './shared-subscription.js';

/** ws sends a Buffer as a binary frame unless told: graphql-ws's messages are text. */
const TEXT = { binary: false } as const;

/**
 * A shared result's `next` payload, serialised once for every subscriber, and the last frame
 * built from it (subscribers that use the same operation id, as many clients do, share it).
 */
interface Frames {
  payload: string;
  id: string | undefined;
  frame: Buffer | undefined;
}

/** result -> its frames, dropped with the result (which is dropped with its event). */
const frames = new WeakMap<ExecutionResult, Frames>();

/**
 * The `next` message of operation `id` with this result, byte for byte what graphql-ws sends
 * (its emit.next: the result without `errors`, then the errors' toJSON() when there are any,
 * in `{"id","type","payload"}` through JSON.stringify). The payload is serialised once per
 * result, whichever subscriber asks first; the others get the id spliced in.
 */
export function nextFrame(result: ExecutionResult, id: string): Buffer {
  let cached = frames.get(result);
  if (!cached) {
    const { errors, ...withoutErrors } = result;
    const payload = {
      ...withoutErrors,
      ...(errors ? { errors: errors.map((error) => error.toJSON()) } : {}),
    };
    cached = { payload: JSON.stringify(payload), id: undefined, frame: undefined };
    frames.set(result, cached);
  }
  if (cached.id !== id || cached.frame === undefined) {
    cached.id = id;
    cached.frame = Buffer.from(
      `{"id":${JSON.stringify(id)},"type":"next","payload":${cached.payload}}`,
    );
  }
  return cached.frame;
}

/**
 * What graphql-ws is handed for a shared subscription over a socket: an async generator that
 * yields nothing and ends (or throws) when the shared stream does, while it writes the stream's
 * `next` frames to the socket itself. graphql-ws keeps the rest of the protocol: it registers
 * the operation, calls `next` once it is registered (which starts the writing), sends
 * `complete` or `error` after the last frame, calls `return` on the client's `complete` or the
 * socket's close, and runs the onComplete hook.
 *
 * Per event and subscriber, graphql-ws's path costs its for-await step, the onNext hook's await,
 * a copy of the result, a JSON.stringify of the whole message and a promise with its closure per
 * send; with a thousand subscribers of one job they advance side by side, so each of those is a
 * thousand more steps before the last frame leaves. Here an event costs one promise hop (the
 * feed's), a look-up of the frame (serialised once for everyone) and ws's send.
 *
 * As graphql-ws does, the next event is taken only once the frame before it is written (so a
 * slow client holds the feed's newest state, not a growing socket buffer), and nothing is sent
 * while the socket is not open.
 */
export class SocketSubscription implements AsyncGenerator<never, undefined, unknown> {
  private started = false;
  private finished = false;
  private ended: Promise<IteratorResult<never, undefined>> | undefined;
  private resolveEnded: (result: IteratorResult<never, undefined>) => void = () => undefined;
  private rejectEnded: (error: unknown) => void = () => undefined;

  constructor(
    private readonly stream: SharedStream,
    private readonly socket: WebSocket,
    private readonly id: string,
  ) {}

  next(): Promise<IteratorResult<never, undefined>> {
    if (!this.ended) {
      // Ended before graphql-ws began (the client's complete came first): nothing to write.
      if (this.finished) return Promise.resolve({ value: undefined, done: true });
      this.ended = new Promise((resolve, reject) => {
        this.resolveEnded = resolve;
        this.rejectEnded = reject;
      });
    }
    if (!this.started && !this.finished) {
      this.started = true;
      this.pull();
    }
    return this.ended;
  }

  return(): Promise<IteratorResult<never, undefined>> {
    this.finish();
    return this.stream.return() as Promise<IteratorResult<never, undefined>>;
  }

  async throw(error: unknown): Promise<IteratorResult<never, undefined>> {
    this.finish();
    await this.stream.return();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private pull(): void {
    if (this.finished) return;
    this.stream.nextEvent().then(this.onEvent, this.onStreamError);
  }

  private readonly onEvent = (step: IteratorResult<unknown>): void => {
    if (this.finished) return;
    if (step.done) {
      this.finish();
      return;
    }
    let result: ExecutionResult | Promise<ExecutionResult>;
    try {
      result = this.stream.result(step.value);
    } catch (error) {
      this.onStreamError(error);
      return;
    }
    if (result instanceof Promise) result.then(this.send, this.onStreamError);
    else this.send(result);
  };

  private readonly send = (result: ExecutionResult): void => {
    if (this.finished) return;
    const socket = this.socket;
    // graphql-ws's send does nothing on a socket that is not open (and goes on).
    if (socket.readyState !== socket.OPEN) {
      this.pull();
      return;
    }
    // Nothing may throw out of here: this runs in a promise's callback that nobody awaits.
    try {
      socket.send(nextFrame(result, this.id), TEXT, this.sent);
    } catch (error) {
      this.fail(error);
    }
  };

  private readonly sent = (error?: Error | null): void => {
    if (error) this.fail(error);
    else this.pull();
  };

  /** The stream failed: graphql-ws sends the (masked) error as the operation's `error`. */
  private readonly onStreamError = (error: unknown): void => {
    this.fail(this.stream.maskEnd(error));
  };

  /** Ends the writing and the stream; graphql-ws then sends the error. */
  private fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    void this.stream.return().catch(() => undefined);
    this.rejectEnded(error);
  }

  /** Ends the writing; graphql-ws then sends `complete` (unless the client ended it). */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveEnded({ value: undefined, done: true });
  }
}
