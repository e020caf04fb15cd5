/**
 * At most `limit` places per key, counted in this process: open sockets per client address,
 * live subscriptions per viewer. In memory on purpose: a place belongs to a socket of this
 * process, so it is freed with the socket, and nothing is left behind when the process dies.
 */
export class KeyedLimit {
  private readonly held = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** Takes a place for `key`; false when all of them are taken. */
  take(key: string): boolean {
    const count = this.held.get(key) ?? 0;
    if (count >= this.limit) return false;
    this.held.set(key, count + 1);
    return true;
  }

  release(key: string): void {
    const count = this.held.get(key) ?? 0;
    if (count <= 1) this.held.delete(key);
    else this.held.set(key, count - 1);
  }
}
