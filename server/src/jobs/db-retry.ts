/**
 * The worker's writes that end or start a job (claim, complete, fail, hand back, undo point,
 * settle) must not be lost to a database that is away for a while (restarted, failed over):
 * a backup that made its snapshot while MariaDB restarted would otherwise stay RUNNING until
 * the stale sweep called it interrupted, and a finished restore would be reported as "left as
 * it was". Such a write is tried again, with growing pauses, for up to ten minutes; errors
 * that are not about the connection are thrown at once.
 */

/** SQLSTATE class 08 (connection exception), the driver's own connection errors, socket errors. */
export function isConnectionError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const x = e as {
      name?: string;
      code?: string;
      errno?: number;
      sqlState?: string;
      message?: string;
      cause?: unknown;
    };
    if (x.name === 'ConnectionException') return true;
    if (typeof x.sqlState === 'string' && x.sqlState.startsWith('08')) return true;
    if (
      x.code &&
      /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|ER_GET_CONNECTION_TIMEOUT|ER_CONNECTION_TIMEOUT|ER_SOCKET_UNEXPECTED_CLOSE|ER_CONNECTION_ALREADY_CLOSED|ER_CMD_CONNECTION_CLOSED|ER_SERVER_SHUTDOWN|ER_CONNECTION_KILLED)$/.test(
        x.code,
      )
    ) {
      return true;
    }
    // 45009 socket closed, 45012 connect timeout, 45028 pool timeout (mariadb connector)
    if (x.errno === 45009 || x.errno === 45012 || x.errno === 45028) return true;
    // 1053 server shutdown in progress, 1927 connection killed, 2006/2013 gone away / lost
    if (x.errno === 1053 || x.errno === 1927 || x.errno === 2006 || x.errno === 2013) return true;
    e = x.cause;
  }
  return false;
}

export interface RetryOptions {
  /** How long to keep trying, in ms (default 10 minutes). */
  forMs?: number;
  /**
   * Asks the database something trivial: a write that failed otherwise (knex reports a BEGIN
   * lost with the connection as "Transaction query already complete") is tried again when
   * this fails with a connection error.
   */
  probe?: () => Promise<unknown>;
  /** Told of each failed attempt that will be tried again. */
  onRetry?: (error: unknown, attempt: number) => void;
}

const pauses = [250, 500, 1000, 2000, 5000];

export async function retryWhileDisconnected<T>(
  write: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const until = Date.now() + (options.forMs ?? 600_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (Date.now() >= until) throw error;
      if (!isConnectionError(error)) {
        const away = options.probe
          ? await options.probe().then(
              () => false,
              (e: unknown) => isConnectionError(e),
            )
          : false;
        if (!away) throw error;
      }
      options.onRetry?.(error, attempt);
      const pause = pauses[Math.min(attempt - 1, pauses.length - 1)] as number;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, until - Date.now())));
    }
  }
}
