import http from 'node:http';
import https from 'node:https';
import {
  addressAllowed,
  checkUrl,
  guardedLookup,
  literalAddress,
  type TargetPolicy,
  TargetRefusedError,
} from './webhook-targets.js';

export interface PostOutcome {
  /** The receiver's status code; null when no answer came. */
  statusCode: number | null;
  /** Why the attempt failed, in a few words (null: a 2xx answer). */
  error: string | null;
  durationMs: number;
}

/** The most of an answer that is read (and thrown away): receivers are told to answer fast. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * One POST of a webhook: the target checked again (scheme, and every address after DNS, by
 * the socket's own lookup), no redirect followed (a 3xx is a failed attempt), no connection
 * reused, and the whole exchange bounded by `timeoutMs`.
 */
export async function postWebhook(
  target: string,
  body: string,
  headers: Record<string, string>,
  policy: TargetPolicy,
  timeoutMs: number,
): Promise<PostOutcome> {
  const started = Date.now();
  const done = (statusCode: number | null, error: string | null): PostOutcome => ({
    statusCode,
    error,
    durationMs: Date.now() - started,
  });
  let url: URL;
  try {
    url = checkUrl(target, policy);
    const literal = literalAddress(url);
    if (literal && !addressAllowed(literal, policy)) {
      throw new TargetRefusedError(`${literal} is not reachable for webhooks`);
    }
  } catch (error) {
    return done(null, error instanceof Error ? error.message : String(error));
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(outcome);
    };
    const request = client.request(url, {
      method: 'POST',
      agent: false,
      lookup: guardedLookup(policy),
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'customer-backups-webhooks/1',
      },
    });
    const timer = setTimeout(
      () => finish(done(null, `no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      const reason =
        error instanceof TargetRefusedError ? error.message : (error.code ?? error.message);
      finish(done(null, reason));
    });
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_ANSWER_BYTES) response.destroy();
      });
      const answered = () => {
        if (status >= 200 && status < 300) return finish(done(status, null));
        if (status >= 300 && status < 400) return finish(done(status, 'redirect not followed'));
        return finish(done(status, `answered ${status}`));
      };
      response.on('end', answered);
      response.on('close', answered);
      response.on('error', answered);
    });
    request.end(body);
  });
}
