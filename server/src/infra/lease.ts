import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A lease in Redis held while a process does something only one process may do at a time
 * (one worker per hosting node; one prune/check per repository). It expires by itself if the
 * holder dies, and is renewed while the holder lives.
 */
export class RedisLease {
  private readonly token = randomBytes(12).toString('hex');
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    readonly key: string,
    private readonly ttlMs: number,
  ) {}

  async tryAcquire(): Promise<boolean> {
    const ok = await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK') return false;
    this.timer = setInterval(() => void this.renew(), Math.max(500, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    return true;
  }

  /** Waits until the lease is free (a dead holder's lease expires after its ttl). */
  async acquire(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.tryAcquire()) return true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return false;
  }

  private async renew(): Promise<void> {
    await this.redis.eval(
      `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`,
      1,
      this.key,
      this.token,
      String(this.ttlMs),
    );
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.redis.eval(
      `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`,
      1,
      this.key,
      this.token,
    );
  }
}
