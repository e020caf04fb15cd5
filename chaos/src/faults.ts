// The faults, one at a time at random instants (the seed's own sequence): what is killed or
// stopped comes back after a random short time, as systemd (Restart=) or an operator would
// bring it back. A fault is survived when, after it is lifted, the api is ready again and the
// worker runs within two minutes. The api and the worker are also restarted when they end by
// themselves (as systemd would); main.ts reports every such exit as a violation.
import { sleep } from '@backups/bench/stats';
import { Rng } from './rng.js';
import { type Child, descendants, type Log } from './services.js';
import type { World } from './world.js';

export const FAULT_TYPES = [
  'kill-worker',
  'kill-api',
  'kill-restic',
  'kill-mariadb-client',
  'mariadb-stop',
  'redis-stop',
  'rest-server-stop',
  'sftp-server-stop',
  'staging-full',
] as const;
export type FaultType = (typeof FAULT_TYPES)[number];

interface FaultRecord {
  type: FaultType;
  at: number;
  downMs: number;
  survived: boolean | undefined;
  detail: string;
}

export class FaultInjector {
  private readonly rng: Rng;
  private readonly records: FaultRecord[] = [];
  private readonly noTarget: Partial<Record<FaultType, number>> = {};
  /** Children the injector holds down on purpose (not restarted by the supervisor). */
  private readonly heldDown = new Set<string>();
  private supervising = true;
  private readonly supervisor: Promise<void>;
  /** False from an api kill until the probe gets an answer again. */
  apiAnsweredSinceStart = true;
  private stagingFull = false;
  private round: FaultType[] = [];

  constructor(
    private readonly world: World,
    seedRng: Rng,
    private readonly log: Log,
    private readonly options: { quick: boolean },
  ) {
    this.rng = new Rng(Math.floor(seedRng.next() * 2 ** 31) ^ 0x5eed);
    this.supervisor = this.supervise();
  }

  total(): number {
    return this.records.length;
  }

  summary(): Record<string, { injected: number; survived: number; noTarget: number }> {
    const out: Record<string, { injected: number; survived: number; noTarget: number }> = {};
    for (const type of FAULT_TYPES) {
      const mine = this.records.filter((r) => r.type === type);
      out[type] = {
        injected: mine.length,
        survived: mine.filter((r) => r.survived).length,
        noTarget: this.noTarget[type] ?? 0,
      };
    }
    return out;
  }

  unsurvived(): string[] {
    return this.records
      .filter((r) => r.survived === false)
      .map((r) => `${r.type} at ${(r.at / 1000).toFixed(0)} s: ${r.detail}`);
  }

  /** Restarts the api and the worker when they ended by themselves (not held down). */
  private async supervise(): Promise<void> {
    while (this.supervising) {
      await sleep(2000);
      for (const child of [this.world.api, this.world.worker]) {
        if (!this.supervising || child.running || this.heldDown.has(child.name)) continue;
        this.log(`supervisor: starting ${child.name} again`);
        if (child === this.world.api) this.apiAnsweredSinceStart = false;
        await child
          .start()
          .catch((e: Error) => this.log(`supervisor: ${child.name}: ${e.message.slice(0, 200)}`));
      }
    }
  }

  private async down(child: Child, signal: NodeJS.Signals, ms: number): Promise<void> {
    this.heldDown.add(child.name);
    try {
      if (child === this.world.api) this.apiAnsweredSinceStart = false;
      await child.stop(signal);
      await sleep(ms);
    } finally {
      await child
        .start()
        .catch((e: Error) => this.log(`${child.name} start: ${e.message.slice(0, 300)}`));
      this.heldDown.delete(child.name);
    }
  }

  /**
   * A script's child of the worker by command name, waited for up to waitMs, looked for every
   * pollMs. A mariadb client lives for well under a second with the run's small databases (a
   * dump, a drill's or restore's import): looked for every 8 s at 250 ms, it was almost never
   * there (the fault had no target in a whole 30-minute run), so it is waited for longer (60 s;
   * --quick: 20 s of its 2 minutes) and looked for more often.
   */
  private async childOfWorker(
    names: string[],
    waitMs = 8000,
    pollMs = 250,
  ): Promise<number | undefined> {
    const until = Date.now() + waitMs;
    while (Date.now() < until) {
      const pid = this.world.worker.pid;
      if (pid) {
        const found = (await descendants(pid)).filter((p) => names.includes(p.comm));
        if (found.length > 0) return this.rng.pick(found).pid;
      }
      await sleep(pollMs);
    }
    return undefined;
  }

  private async inject(type: FaultType, downMs: number): Promise<string | null> {
    const w = this.world;
    switch (type) {
      case 'kill-worker':
        await this.down(w.worker, 'SIGKILL', downMs);
        return 'worker SIGKILLed';
      case 'kill-api':
        await this.down(w.api, 'SIGKILL', downMs);
        return 'api SIGKILLed';
      case 'kill-restic':
      case 'kill-mariadb-client': {
        const names =
          type === 'kill-restic' ? ['restic'] : ['mariadb', 'mariadb-dump', 'mysqldump', 'mysql'];
        const pid =
          type === 'kill-restic'
            ? await this.childOfWorker(names)
            : await this.childOfWorker(names, this.options.quick ? 20_000 : 60_000, 50);
        if (!pid) return null;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          return null;
        }
        return `pid ${pid} SIGKILLed`;
      }
      case 'mariadb-stop': {
        const signal = this.rng.chance(0.3) ? 'SIGKILL' : 'SIGTERM';
        await this.down(w.db.child, signal, downMs);
        return `mariadbd ${signal}`;
      }
      case 'redis-stop':
        await this.down(w.redisServer.child, 'SIGTERM', downMs);
        return 'redis-server stopped';
      case 'rest-server-stop':
        try {
          await w.rest.stop('SIGKILL');
          await sleep(downMs);
        } finally {
          await w.rest.start();
        }
        return 'rest-server killed';
      case 'sftp-server-stop':
        try {
          await w.sftp.stop('SIGKILL');
          await sleep(downMs);
        } finally {
          await w.sftp.start();
        }
        return 'sshd killed';
      case 'staging-full':
        this.stagingFull = true;
        try {
          await w.staging.fill();
          await sleep(downMs * 2);
        } finally {
          await w.staging.free();
          this.stagingFull = false;
        }
        return 'staging filled';
    }
  }

  /** Healthy: the api ready and the worker running for 3 s in a row, within 2 minutes. */
  private async healthy(): Promise<boolean> {
    const until = Date.now() + 120_000;
    let since: number | null = null;
    while (Date.now() < until) {
      const ok = this.world.worker.running && this.world.api.running && (await this.world.readyz());
      if (ok) {
        since ??= Date.now();
        if (Date.now() - since >= 3000) return true;
      } else since = null;
      await sleep(500);
    }
    return false;
  }

  async run(until: number): Promise<void> {
    while (Date.now() < until) {
      const gap = this.options.quick ? this.rng.between(1500, 4000) : this.rng.between(2000, 6000);
      await sleep(gap);
      if (Date.now() >= until) break;
      // every type once per round, in a seeded order: the counts stay even
      if (this.round.length === 0) this.round = this.rng.shuffle([...FAULT_TYPES]);
      const type = this.round.shift() as FaultType;
      const downMs = this.rng.between(1000, this.options.quick ? 5000 : 8000);
      const at = Date.now();
      const detail = await this.inject(type, downMs).catch(
        (e: Error) => `inject failed: ${e.message}`,
      );
      if (detail === null) {
        this.noTarget[type] = (this.noTarget[type] ?? 0) + 1;
        continue;
      }
      const record: FaultRecord = { type, at, downMs, survived: undefined, detail };
      this.records.push(record);
      this.log(
        `fault ${this.records.length}: ${type} (${detail}, ${(downMs / 1000).toFixed(1)} s)`,
      );
      record.survived = await this.healthy();
      if (!record.survived) this.log(`fault ${type} NOT survived: the system did not recover`);
    }
  }

  /** Everything up again (the settle period's start). */
  async restoreAll(): Promise<void> {
    const w = this.world;
    if (this.stagingFull) await w.staging.free();
    await w.db.child.start();
    await w.redisServer.child.start();
    await w.rest.start();
    await w.sftp.start();
    await w.worker.start();
    await w.api.start();
  }

  async stop(): Promise<void> {
    this.supervising = false;
    await this.supervisor;
  }
}
