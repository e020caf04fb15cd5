/** The e-mails a customer can switch on or off (each a column of notification_settings). */
export const MAIL_KINDS = [
  'restore_completed',
  'restore_failed',
  'daily_failed_twice',
  'drill_failed',
] as const;
export type MailKind = (typeof MAIL_KINDS)[number];
