import type { EntityManager, MikroORM } from '@mikro-orm/mariadb';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../config/config.js';
import type { Logger } from '../infra/logger.js';

export interface MailDelivererDeps {
  orm: Pick<MikroORM, 'em'>;
  config: Config;
  logger: Logger;
  node: string;
}

interface MailRow {
  id: number;
  attempts: number;
  to_address: string;
  subject: string;
  text_body: string;
  html_body: string;
}

/** An e-mail not sent within this long is dropped: news of a restore a day late misleads. */
const MAX_AGE_MS = 24 * 3600_000;

/**
 * Sends the node's e-mail outbox through SMTP (nodemailer): every sweep claims what is due,
 * one row at a time (so two workers or two sweeps never send one twice), and a message the
 * server did not take is tried again after the configured delays, then marked failed.
 */
export class MailDeliverer {
  private readonly transport: Transporter;
  private readonly schedule: number[];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly deps: MailDelivererDeps,
    smtpUrl: string,
  ) {
    this.transport = nodemailer.createTransport(smtpUrl);
    this.schedule = deps.config.BACKUPS_MAIL_RETRY_SECONDS.split(',').map(Number);
  }

  private em(): EntityManager {
    return this.deps.orm.em.fork() as EntityManager;
  }

  start(): void {
    const tick = () => {
      if (this.running || this.stopped) return;
      this.running = this.sweep()
        .then(() => undefined)
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'mail sweep failed'))
        .finally(() => {
          this.running = undefined;
        });
    };
    tick();
    this.timer = setInterval(tick, this.deps.config.BACKUPS_MAIL_SWEEP_SECONDS * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    this.transport.close();
  }

  /** Sends every due e-mail of the node; returns how many were sent. */
  async sweep(): Promise<number> {
    const connection = this.em().getConnection();
    const now = new Date();
    await connection.execute(
      `update email_messages set status = 'failed', last_error = 'not sent within a day'
       where node = ? and status = 'pending' and created_at < ?`,
      [this.deps.node, new Date(now.getTime() - MAX_AGE_MS)],
      'run',
    );
    const due = await connection.execute<{ id: number }[]>(
      `select id from email_messages where node = ? and status = 'pending' and next_attempt_at <= ?
         and (locked_until is null or locked_until < ?) order by id limit 100`,
      [this.deps.node, now, now],
    );
    let sent = 0;
    for (const { id } of due) {
      if (this.stopped) break;
      if (await this.send(Number(id))) sent += 1;
    }
    return sent;
  }

  private async send(id: number): Promise<boolean> {
    const connection = this.em().getConnection();
    const now = new Date();
    const claimed = await connection.execute<{ affectedRows: number }>(
      `update email_messages set locked_until = ? where id = ? and status = 'pending'
         and next_attempt_at <= ? and (locked_until is null or locked_until < ?)`,
      [new Date(now.getTime() + 120_000), id, now, now],
      'run',
    );
    if (Number(claimed.affectedRows) === 0) return false;
    const [row] = await connection.execute<MailRow[]>(
      'select id, attempts, to_address, subject, text_body, html_body from email_messages where id = ?',
      [id],
    );
    if (!row) return false;
    const attempt = Number(row.attempts) + 1;
    try {
      await this.transport.sendMail({
        from: this.deps.config.BACKUPS_MAIL_FROM,
        to: row.to_address,
        subject: row.subject,
        text: row.text_body,
        html: row.html_body,
      });
      await connection.execute(
        `update email_messages set status = 'sent', attempts = ?, sent_at = ?, locked_until = null,
           last_error = null where id = ?`,
        [attempt, new Date(), id],
        'run',
      );
      return true;
    } catch (error) {
      const delay = this.schedule[attempt - 1];
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 300);
      this.deps.logger.warn({ err: error, mailId: id, attempt }, 'e-mail not sent');
      await connection.execute(
        `update email_messages set status = ?, attempts = ?, next_attempt_at = ?, locked_until = null,
           last_error = ? where id = ?`,
        [
          delay === undefined ? 'failed' : 'pending',
          attempt,
          delay === undefined ? null : new Date(Date.now() + delay * 1000),
          message,
          id,
        ],
        'run',
      );
      return false;
    }
  }
}
