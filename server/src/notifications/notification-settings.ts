import type { EntityManager } from '@mikro-orm/mariadb';
import { MAIL_KINDS, type MailKind } from './mail-kinds.js';

export type NotificationSettings = Record<MailKind, boolean>;

const ALL_ON: NotificationSettings = {
  restore_completed: true,
  restore_failed: true,
  daily_failed_twice: true,
  drill_failed: true,
};

/** A customer's switches; everything is on until they change it. */
export async function notificationSettings(
  em: EntityManager,
  customerId: number,
): Promise<NotificationSettings> {
  const [row] = await em
    .getConnection()
    .execute<Record<MailKind, number>[]>(
      `select ${MAIL_KINDS.join(', ')} from notification_settings where customer_id = ?`,
      [customerId],
      'all',
      em.getTransactionContext(),
    );
  if (!row) return { ...ALL_ON };
  return Object.fromEntries(
    MAIL_KINDS.map((k) => [k, Number(row[k]) === 1]),
  ) as NotificationSettings;
}

/** Changes the switches named in `changes`; the others stay as they were. */
export async function updateNotificationSettings(
  em: EntityManager,
  customerId: number,
  changes: Partial<NotificationSettings>,
): Promise<NotificationSettings> {
  const next = { ...(await notificationSettings(em, customerId)), ...changes };
  const values = MAIL_KINDS.map((k) => (next[k] ? 1 : 0));
  await em.getConnection().execute(
    `insert into notification_settings (customer_id, ${MAIL_KINDS.join(', ')}, updated_at)
     values (?, ${MAIL_KINDS.map(() => '?').join(', ')}, ?)
     on duplicate key update ${MAIL_KINDS.map((k) => `${k} = values(${k})`).join(', ')},
       updated_at = values(updated_at)`,
    [customerId, ...values, new Date()],
  );
  return next;
}
