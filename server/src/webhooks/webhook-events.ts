/**
 * Every event a webhook can ask for: the one list (GraphQL, the outbox and the SPA read it).
 * job.* are recorded by the job store for every kind, in the transaction that changes the row.
 * The others are announced by their kinds' tasks (ctx.announce: VERIFY's backup.verified and
 * verification.failed, DOWNLOAD's download.ready) and recorded by the job store with the job's
 * end, in the same transaction: add an event here, then announce it where it happens.
 */
export const WEBHOOK_EVENTS = [
  'job.started',
  'job.completed',
  'job.failed',
  'backup.verified',
  'verification.failed',
  'download.ready',
] as const;

export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export function isWebhookEvent(name: string): name is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly string[]).includes(name);
}
