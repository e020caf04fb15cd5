import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity.js';

/** A webhook: where one customer's (or, customer null, every customer's) events are sent. */
export const Webhook = defineEntity({
  name: 'Webhook',
  tableName: 'webhooks',
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    /** null: every customer's events (an admin token's hook). */
    customer: () => p.manyToOne(Customer).nullable().deleteRule('cascade'),
    /** Made by an admin token: only admin tokens see or delete it. */
    adminOwned: p.boolean().default(false),
    url: p.string().length(2000),
    /** The event names, comma-separated (see webhook-events.ts). */
    events: p.string().length(500),
    /** The signing secret, AES-256-GCM (secret-box.ts); never read back by the api. */
    secretEncrypted: p.string().length(200).hidden().lazy(),
    createdByKind: p.string().length(16),
    createdById: p.string().length(64).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type IWebhook = InferEntity<typeof Webhook>;

export const MESSAGE_STATUSES = ['pending', 'delivered', 'failed'] as const;

/** One event for one hook (the outbox row), with its delivery state. */
export const WebhookMessage = defineEntity({
  name: 'WebhookMessage',
  tableName: 'webhook_messages',
  properties: {
    id: p.bigint('number').primary().unsigned().autoincrement(),
    webhook: () => p.manyToOne(Webhook).deleteRule('cascade'),
    node: p.string().length(63),
    event: p.string().length(40),
    jobId: p.integer().unsigned().nullable(),
    payload: p.text().lazy(),
    status: p.enum([...MESSAGE_STATUSES]).default('pending'),
    attempts: p.integer().unsigned().default(0),
    nextAttemptAt: p.datetime().nullable(),
    lockedUntil: p.datetime().nullable(),
    lastStatusCode: p.smallint().unsigned().nullable(),
    createdAt: p.datetime(),
    finishedAt: p.datetime().nullable(),
  },
});
export type IWebhookMessage = InferEntity<typeof WebhookMessage>;

/** One attempt to deliver a message: what the receiver answered, or why nothing was sent. */
export const WebhookAttempt = defineEntity({
  name: 'WebhookAttempt',
  tableName: 'webhook_attempts',
  properties: {
    id: p.bigint('number').primary().unsigned().autoincrement(),
    message: () => p.manyToOne(WebhookMessage).deleteRule('cascade'),
    attempt: p.integer().unsigned(),
    statusCode: p.smallint().unsigned().nullable(),
    error: p.string().length(300).nullable(),
    durationMs: p.integer().unsigned(),
    attemptedAt: p.datetime(),
  },
});
export type IWebhookAttempt = InferEntity<typeof WebhookAttempt>;
