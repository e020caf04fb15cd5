/**
 * Every event a webhook can ask for: the one list (GraphQL, the outbox and the SPA read it).
 * job.* are recorded by the job store for every kind, in the transaction that changes the row.
 * The others are recorded by their kinds' tasks through recordJobEvent (webhook-outbox.ts)
 * when those kinds land: add an event here, then record it where it happens.
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
