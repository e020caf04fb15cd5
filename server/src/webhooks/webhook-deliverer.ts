import type { EntityManager, MikroORM } from '@mikro-orm/mariadb';
import type BeeQueue from 'bee-queue';
import { Webhook as Signer } from 'standardwebhooks';
import type { Config } from '../config/config.js';
import type { Logger } from '../infra/logger.js';
import { SecretBox } from './secret-box.js';
import { postWebhook } from './webhook-post.js';
import { enqueueDelivery, type QueuedDelivery } from './webhook-queue.js';
import { type TargetPolicy, targetPolicy } from './webhook-targets.js';

export interface DelivererDeps {
  orm: Pick<MikroORM, 'em'>;
  config: Config;
  logger: Logger;
  node: string;
  /** The node's webhook queue, as a worker. */
  queue: BeeQueue<QueuedDelivery>;
}

interface MessageRow {
  id: number;
  attempts: number;
  payload: string;
  url: string;
  secret_encrypted: string;
}

/** The seconds before each retry (one attempt more than there are numbers). */
export function retrySchedule(cfg: Pick<Config, 'BACKUPS_WEBHOOK_RETRY_SECONDS'>): number[] {
  return cfg.BACKUPS_WEBHOOK_RETRY_SECONDS.split(',').map(Number);
}

/** Deliveries at once per worker: receivers may be slow; the timeout bounds each. */
const CONCURRENCY = 4;

/**
 * The worker's side of webhooks: delivers the node's outbox messages from its queue, signed as
 * the Standard Webhooks specification says, retries with the configured backoff, and sweeps
 * for due messages whose queue entry was lost (Redis emptied, a crash between commit and
 * queueing). Each attempt is claimed in the database first, so one attempt is made once.
 */
export class WebhookDeliverer {
  private readonly policy: TargetPolicy;
  private readonly schedule: number[];
  private readonly box: SecretBox | null;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: DelivererDeps) {
    this.policy = targetPolicy(deps.config);
    this.schedule = retrySchedule(deps.config);
    this.box = SecretBox.fromConfig(deps.config);
  }

  private em(): EntityManager {
    return this.deps.orm.em.fork() as EntityManager;
  }

  start(): void {
    this.deps.queue.process(CONCURRENCY, async (job) => {
      if (this.stopped) return;
      await this.deliver(job.data.messageId);
    });
    const every = this.deps.config.BACKUPS_WEBHOOK_SWEEP_SECONDS * 1000;
    const tick = () =>
      void this.sweep().catch((error: unknown) =>
        this.deps.logger.warn({ err: error }, 'webhook sweep failed'),
      );
    tick();
    this.sweepTimer = setInterval(tick, every);
    this.sweepTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.sweepTimer);
  }

  /** Queues again the node's due messages (a present queue entry makes this a no-op). */
  async sweep(): Promise<number> {
    const now = new Date();
    const rows = await this.em()
      .getConnection()
      .execute<{ id: number; attempts: number }[]>(
        `select id, attempts from webhook_messages
         where node = ? and status = 'pending' and next_attempt_at <= ?
           and (locked_until is null or locked_until < ?)
         order by next_attempt_at limit 500`,
        [this.deps.node, now, now],
      );
    for (const row of rows) {
      await enqueueDelivery(this.deps.queue, Number(row.id), Number(row.attempts));
    }
    return rows.length;
  }

  /** Makes the next attempt of a message, if it is due and no one else is at it. */
  async deliver(messageId: number): Promise<void> {
    const timeoutMs = this.deps.config.BACKUPS_WEBHOOK_TIMEOUT_SECONDS * 1000;
    const connection = this.em().getConnection();
    const now = new Date();
    // Due now (a delayed entry may fire a moment early); held for the attempt's time.
    const claimed = await connection.execute<{ affectedRows: number }>(
      `update webhook_messages set locked_until = ?
       where id = ? and node = ? and status = 'pending' and next_attempt_at <= ?
         and (locked_until is null or locked_until < ?)`,
      [
        new Date(now.getTime() + timeoutMs + 30_000),
        messageId,
        this.deps.node,
        new Date(now.getTime() + 250),
        now,
      ],
      'run',
    );
    if (Number(claimed.affectedRows) === 0) return;
    const [row] = await connection.execute<MessageRow[]>(
      `select m.id, m.attempts, m.payload, w.url, w.secret_encrypted
       from webhook_messages m join webhooks w on w.id = m.webhook_id where m.id = ?`,
      [messageId],
    );
    if (!row) return;
    const attempt = Number(row.attempts) + 1;
    let outcome: Awaited<ReturnType<typeof postWebhook>>;
    try {
      if (!this.box) throw new Error('no webhook key is configured on this worker');
      const secret = this.box.open(row.secret_encrypted);
      const sentAt = new Date();
      const id = `msg_${row.id}`;
      const signature = new Signer(secret).sign(id, sentAt, row.payload);
      outcome = await postWebhook(
        row.url,
        row.payload,
        {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        },
        this.policy,
        timeoutMs,
      );
    } catch (error) {
      this.deps.logger.error({ err: error, messageId }, 'webhook could not be signed');
      outcome = { statusCode: null, error: 'not sent: the worker cannot sign it', durationMs: 0 };
    }
    await this.record(messageId, attempt, outcome);
  }

  private async record(
    messageId: number,
    attempt: number,
    outcome: Awaited<ReturnType<typeof postWebhook>>,
  ): Promise<void> {
    const at = new Date();
    const delivered = outcome.error === null;
    const delay = this.schedule[attempt - 1];
    const retryAt =
      !delivered && delay !== undefined ? new Date(at.getTime() + delay * 1000) : null;
    const status = delivered ? 'delivered' : retryAt ? 'pending' : 'failed';
    await this.em().transactional(async (em) => {
      const connection = em.getConnection();
      const ctx = em.getTransactionContext();
      await connection.execute(
        `insert into webhook_attempts (message_id, attempt, status_code, error, duration_ms, attempted_at)
         values (?, ?, ?, ?, ?, ?)`,
        [
          messageId,
          attempt,
          outcome.statusCode,
          outcome.error?.slice(0, 300) ?? null,
          outcome.durationMs,
          at,
        ],
        'run',
        ctx,
      );
      await connection.execute(
        `update webhook_messages set status = ?, attempts = ?, last_status_code = ?,
           next_attempt_at = ?, locked_until = null, finished_at = ?
         where id = ?`,
        [status, attempt, outcome.statusCode, retryAt, status === 'pending' ? null : at, messageId],
        'run',
        ctx,
      );
    });
    if (retryAt && !this.stopped) {
      // Lost with Redis? The sweep queues it again once it is due.
      await enqueueDelivery(this.deps.queue, messageId, attempt, retryAt).catch(() => undefined);
    }
  }
}
