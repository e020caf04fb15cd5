import { recordAudit } from '../audit/audit.js';
import { isPrintable } from '../auth/credentials.js';
import { actorOf, mayActFor, type Viewer } from '../auth/viewer.js';
import { Customer, type ICustomer } from '../customers/customer.entity.js';
import type { GraphQLContext } from '../graphql/context.js';
import {
  forbidden,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  unauthenticated,
} from '../graphql/errors.js';
import { parseId } from '../graphql/ids.js';
import { findCustomerSnapshot, SNAPSHOT_ID_PATTERN } from '../snapshots/catalog-read.js';
import { asBackupScope, asSnapshotSource } from '../snapshots/snapshot-scope.js';
import { BackupJob, type IBackupJob, type JobScope } from './job.entity.js';
import { ConfirmationMismatchError, NotCancellableError } from './job-errors.js';
import type { NewJob } from './job-store.js';

export type RequestScope = Pick<GraphQLContext, 'em' | 'services' | 'viewer' | 'ip'>;

export const LABEL_MAX = 200;
export const RESTORE_CONFIRMATION = 'RESTORE';

/**
 * The customer a request acts for: the viewer's own customer, or (admin tokens only) the one
 * named by `customerId`. A customer naming another customer is FORBIDDEN.
 */
export async function targetCustomer(
  scope: RequestScope,
  customerIdArg: string | number | null | undefined,
): Promise<ICustomer> {
  const { viewer } = scope;
  if (!viewer) throw unauthenticated();
  const requested =
    customerIdArg === null || customerIdArg === undefined ? null : parseId(customerIdArg);
  if (customerIdArg !== null && customerIdArg !== undefined && requested === null) {
    throw new InvalidInputError('That is not a customer id.', 'customerId');
  }
  let customerId: number;
  if (viewer.kind === 'admin') {
    if (requested === null) {
      throw new InvalidInputError('An admin token must name the customer.', 'customerId');
    }
    customerId = requested;
  } else {
    if (requested !== null && requested !== viewer.customerId) throw forbidden();
    customerId = viewer.customerId;
  }
  const customer = await scope.em.fork().findOne(Customer, { id: customerId });
  if (!customer) {
    // Only an admin can get here with a bad id; a customer's own row always exists.
    throw new InvalidInputError('There is no such customer.', 'customerId');
  }
  return customer;
}

export function requester(viewer: Viewer): Pick<NewJob, 'requestedByKind' | 'requestedById'> {
  if (viewer.kind === 'customer') {
    return { requestedByKind: 'customer', requestedById: String(viewer.customerId) };
  }
  return { requestedByKind: viewer.kind, requestedById: String(viewer.tokenId) };
}

function validLabel(label: string | null | undefined): string | null {
  if (label === null || label === undefined) return null;
  const trimmed = label.trim();
  if (trimmed.length > LABEL_MAX || !isPrintable(trimmed)) {
    throw new InvalidInputError(
      `A label is at most ${LABEL_MAX} printable characters, on one line.`,
      'label',
    );
  }
  return trimmed === '' ? null : trimmed;
}

export async function checkJobRate(scope: RequestScope, customerId: number): Promise<void> {
  const cfg = scope.services.config;
  const decision = await scope.services.limiter.hit(
    `jobs:${customerId}`,
    cfg.BACKUPS_JOB_LIMIT_PER_CUSTOMER,
    cfg.BACKUPS_RATE_WINDOW_SECONDS,
  );
  if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds);
}

export async function requestBackup(
  scope: RequestScope,
  input: { scope: JobScope; label?: string | null; customerId?: string | null },
): Promise<IBackupJob> {
  const customer = await targetCustomer(scope, input.customerId);
  const viewer = scope.viewer as Viewer;
  const label = validLabel(input.label);
  await checkJobRate(scope, customer.id);
  const job = await scope.services.jobs.create({
    customer,
    kind: 'backup',
    scope: input.scope,
    source: 'manual',
    label,
    ...requester(viewer),
  });
  await recordAudit(scope.em, {
    action: 'backup_requested',
    actor: actorOf(viewer),
    customerId: customer.id,
    targetId: job.id,
    ip: scope.ip,
    details: { scope: input.scope, label },
  });
  return job;
}

function scopeCovers(snapshotScope: JobScope, restoreScope: JobScope): boolean {
  return snapshotScope === 'both' || snapshotScope === restoreScope;
}

export async function requestRestore(
  scope: RequestScope,
  input: { snapshotId: string; scope: JobScope; confirmation: string; customerId?: string | null },
): Promise<IBackupJob> {
  const customer = await targetCustomer(scope, input.customerId);
  const viewer = scope.viewer as Viewer;
  if (input.confirmation !== RESTORE_CONFIRMATION) throw new ConfirmationMismatchError();
  if (!SNAPSHOT_ID_PATTERN.test(input.snapshotId)) {
    throw new InvalidInputError(
      'A snapshot id is 8 to 64 characters of 0-9 and a-f.',
      'snapshotId',
    );
  }
  const snapshot = await findCustomerSnapshot(scope.em, customer.id, input.snapshotId);
  if (!snapshot) throw new NotFoundError('There is no such backup.');
  if (!scopeCovers(asBackupScope(snapshot.scope), input.scope)) {
    throw new InvalidInputError(
      `This backup holds ${snapshot.scope === 'database' ? 'only the database' : 'only the files'}.`,
      'scope',
    );
  }
  await checkJobRate(scope, customer.id);
  const job = await scope.services.jobs.create({
    customer,
    kind: 'restore',
    scope: input.scope,
    source: asSnapshotSource(snapshot.source),
    snapshotId: snapshot.snapshotId,
    label: snapshot.label ?? null,
    ...requester(viewer),
  });
  await recordAudit(scope.em, {
    action: 'restore_requested',
    actor: actorOf(viewer),
    customerId: customer.id,
    targetId: job.id,
    ip: scope.ip,
    details: { scope: input.scope, snapshotId: snapshot.snapshotId, source: snapshot.source },
  });
  return job;
}

/** The job, if the viewer may see it (its own customer's, or any for an admin). */
export async function findVisibleJob(
  scope: Pick<RequestScope, 'em' | 'viewer'>,
  id: string | number,
): Promise<IBackupJob | null> {
  const jobId = parseId(id);
  if (jobId === null || !scope.viewer) return null;
  const job = await scope.em.fork().findOne(BackupJob, { id: jobId });
  if (!job || !mayActFor(scope.viewer, job.customer.id)) return null;
  return job;
}

/** Cancels a job that has not started; the worker skips rows that are no longer pending. */
export async function cancelJob(scope: RequestScope, id: string): Promise<IBackupJob> {
  const visible = await findVisibleJob(scope, id);
  if (!visible) throw new NotFoundError('There is no such job.');
  const { job, cancelled } = await scope.services.jobs.cancel(visible.id);
  if (!cancelled) throw new NotCancellableError(job);
  await recordAudit(scope.em, {
    action: 'job_cancelled',
    actor: actorOf(scope.viewer),
    customerId: job.customer.id,
    targetId: job.id,
    ip: scope.ip,
  });
  return job;
}
