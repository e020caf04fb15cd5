import { randomBytes } from 'node:crypto';
import { type EntityManager, LockMode } from '@mikro-orm/mariadb';
import { recordAudit } from '../audit/audit.js';
import { actorOf, hasAdminRights, type Viewer, viewerCustomerId } from '../auth/viewer.js';
import type { Config } from '../config/config.js';
import { Customer } from '../customers/customer.entity.js';
import { forbidden, InvalidInputError, unauthenticated } from '../graphql/errors.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { parseId } from '../graphql/ids.js';
import { SecretBox } from './secret-box.js';
import { type IWebhook, type IWebhookMessage, Webhook, WebhookMessage } from './webhook.entity.js';
import { isWebhookEvent, WEBHOOK_EVENTS } from './webhook-events.js';
import type { DeliveryQueues } from './webhook-queue.js';
import { checkTarget, checkUrl, TargetRefusedError, targetPolicy } from './webhook-targets.js';

export interface WebhookRequest {
  url: string;
  events: readonly string[];
  customerId?: string | number | null;
}

/** Where a request came from, for the audit log. */
export interface RequestOrigin {
  ip: string | null;
}

/**
 * How the audit log names a hook's target: scheme, host and path, never the query or user
 * info (integrators put tokens there).
 */
function auditedTarget(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`.slice(0, 300);
}

async function auditHook(
  em: EntityManager,
  action: 'webhook_created' | 'webhook_deleted',
  viewer: Viewer,
  hook: IWebhook,
  origin: RequestOrigin,
): Promise<void> {
  const customerId = hook.customer ? Number(hook.customer.id) : null;
  await recordAudit(em, {
    action,
    actor: actorOf(viewer),
    customerId,
    targetId: hook.id,
    ip: origin.ip,
    details: {
      url: auditedTarget(hook.url),
      events: hook.events.split(','),
      ...(customerId === null ? { allCustomers: true } : {}),
    },
  });
}

/** Hooks a viewer manages: a customer's own (not the hosting company's), every one for admins. */
export function manageableWhere(viewer: Viewer) {
  if (hasAdminRights(viewer)) return {};
  const customerId = viewerCustomerId(viewer);
  if (customerId === null) throw forbidden();
  return { customer: customerId, adminOwned: false };
}

function checkEvents(events: readonly string[]): string[] {
  const unique = [...new Set(events.map((e) => e.trim()))];
  if (unique.length === 0) {
    throw new InvalidInputError('Choose at least one event.', 'events');
  }
  const unknown = unique.filter((e) => !isWebhookEvent(e));
  if (unknown.length > 0) {
    throw new InvalidInputError(
      `Unknown event ${unknown.slice(0, 3).join(', ').slice(0, 120)}; known: ${WEBHOOK_EVENTS.join(', ')}.`,
      'events',
    );
  }
  return unique;
}

/**
 * A new webhook, with its secret (returned once, stored sealed). Customers make hooks for
 * their own jobs; admin tokens for one customer (customerId) or every customer (none).
 * Checked before anything is stored: known events, the URL's scheme and length, every address
 * its host resolves to, the key to seal the secret, the per-customer limit.
 */
export async function createWebhook(
  em: EntityManager,
  cfg: Config,
  viewer: Viewer | null,
  request: WebhookRequest,
  origin: RequestOrigin = { ip: null },
): Promise<{ webhook: IWebhook; secret: string }> {
  if (!viewer) throw unauthenticated();
  let customerId: number | null;
  const asked =
    request.customerId === null || request.customerId === undefined
      ? null
      : parseId(request.customerId);
  if (request.customerId != null && asked === null) {
    throw new InvalidInputError('That is not a customer id.', 'customerId');
  }
  const own = viewerCustomerId(viewer);
  if (hasAdminRights(viewer)) {
    customerId = asked;
  } else {
    if (own === null || (asked !== null && asked !== own)) throw forbidden();
    customerId = own;
  }
  const events = checkEvents(request.events);
  const policy = targetPolicy(cfg);
  let url: URL;
  try {
    url = checkUrl(request.url.trim(), policy);
    await checkTarget(url, policy);
  } catch (error) {
    if (error instanceof TargetRefusedError) throw new InvalidInputError(error.message, 'url');
    throw error;
  }
  const box = SecretBox.fromConfig(cfg);
  if (!box) {
    throw new GraphQLError('Webhooks are not set up on this installation (no webhook key).', {
      extensions: { code: 'NOT_CONFIGURED' },
    });
  }
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const limit = cfg.BACKUPS_WEBHOOK_LIMIT_PER_CUSTOMER;
  const webhook = await em.fork().transactional(async (tem) => {
    if (customerId !== null) {
      // The customer's row, locked: two creations at once cannot both pass the limit.
      const customer = await tem.findOne(Customer, customerId, {
        lockMode: LockMode.PESSIMISTIC_WRITE,
      });
      if (!customer) throw new InvalidInputError('There is no such customer.', 'customerId');
    }
    const count = await tem.count(Webhook, { customer: customerId });
    if (count >= limit) {
      throw new InvalidInputError(`At most ${limit} webhooks per customer.`, 'url');
    }
    const hook = tem.create(Webhook, {
      customer: customerId,
      adminOwned: hasAdminRights(viewer),
      url: url.toString(),
      events: events.join(','),
      secretEncrypted: box.seal(secret),
      createdByKind: actorOf(viewer).kind,
      createdById: actorOf(viewer).id,
    });
    await tem.flush();
    return hook;
  });
  await auditHook(em, 'webhook_created', viewer, webhook, origin);
  return { webhook, secret };
}

/** Deletes a hook the viewer manages (its undelivered messages go with it), audited. */
export async function deleteWebhook(
  em: EntityManager,
  viewer: Viewer,
  idArg: string,
  origin: RequestOrigin = { ip: null },
): Promise<boolean> {
  const id = parseId(idArg);
  if (id === null) return false;
  const fork = em.fork();
  const hook = await fork.findOne(Webhook, { id, ...manageableWhere(viewer) });
  if (!hook) return false;
  // Two deletions at once: the one that removed the row audits it.
  if ((await fork.nativeDelete(Webhook, { id: hook.id })) === 0) return false;
  await auditHook(em, 'webhook_deleted', viewer, hook, origin);
  return true;
}

/** A message of a hook the viewer manages; null otherwise (never a hint that it exists). */
export async function findManageableMessage(
  em: EntityManager,
  viewer: Viewer,
  idArg: string,
): Promise<IWebhookMessage | null> {
  const id = parseId(idArg);
  if (id === null) return null;
  return em.fork().findOne(WebhookMessage, { id, webhook: manageableWhere(viewer) });
}

/**
 * One more attempt of a message, now, whatever its state (delivered, failed, or waiting for a
 * retry); false when it is not the viewer's or an attempt is under way.
 */
export async function redeliver(
  em: EntityManager,
  viewer: Viewer,
  deliveries: DeliveryQueues,
  idArg: string,
): Promise<boolean> {
  const message = await findManageableMessage(em, viewer, idArg);
  if (!message) return false;
  const now = new Date();
  const changed = await em
    .fork()
    .nativeUpdate(
      WebhookMessage,
      { id: message.id, $or: [{ lockedUntil: null }, { lockedUntil: { $lt: now } }] },
      { status: 'pending', nextAttemptAt: now, finishedAt: null },
    );
  if (changed === 0) return false;
  await deliveries.enqueue([{ id: message.id, node: message.node }], message.attempts, true);
  return true;
}
