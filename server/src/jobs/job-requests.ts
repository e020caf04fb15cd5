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
import {
  findCustomerSnapshot,
  findCustomerSnapshotView,
  SNAPSHOT_ID_PATTERN,
  type SnapshotView,
} from '../snapshots/catalog-read.js';
import { indexedPaths, listTables, PATHS_MAX, pathProblem } from '../snapshots/index-read.js';
import type { ISnapshot } from '../snapshots/snapshot.entity.js';
import { asBackupScope, asSnapshotSource } from '../snapshots/snapshot-scope.js';
import { BackupJob, type IBackupJob, type JobScope } from './job.entity.js';
import {
  ConfirmationMismatchError,
  JobInProgressError,
  NotCancellableError,
} from './job-errors.js';
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
  if (viewer.kind === 'admin' || viewer.kind === 'staff') {
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
  // Support staff act with admin rights; the id says who (the audit log's actor too).
  if (viewer.kind === 'staff') {
    return { requestedByKind: 'admin', requestedById: `staff:${viewer.staffId}` };
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

/** Why a table name cannot be restored by name (the rule customer-restore applies too). */
function tableNameProblem(name: string): string | null {
  if (name.length < 1 || name.length > 64) return 'A table name is 1 to 64 characters long.';
  if ([...name].some((c) => (c.codePointAt(0) ?? 0) < 0x20 || c === '\u007f')) {
    return 'A table name must not contain control characters.';
  }
  if (/[`'"\\]/.test(name) || name.endsWith(' ')) {
    return 'A table name must not contain quotes, backticks or backslashes, nor end with a space.';
  }
  return null;
}

/**
 * A partial restore's choice, checked against the snapshot's index before anything is queued
 * (DESIGN.md §10): paths relative to the site folder, normalised, at most 1,000, each in this
 * customer's index of this snapshot (a legacy daily snapshot's index holds this customer's
 * folder alone, so no other customer's path can be named); tables in the dump. Paths inside
 * another chosen path are dropped (the folder is restored whole).
 */
async function partialChoice(
  scope: RequestScope,
  snapshot: ISnapshot,
  restoreScope: JobScope,
  input: { paths?: readonly string[] | null; tables?: readonly string[] | null },
): Promise<{ paths: string[] | null; tables: string[] | null }> {
  const { paths, tables } = input;
  if (paths == null && tables == null) return { paths: null, tables: null };
  if (paths != null && restoreScope === 'database') {
    throw new InvalidInputError('Paths are restored with the scope FILES or BOTH.', 'paths');
  }
  if (tables != null && restoreScope === 'files') {
    throw new InvalidInputError('Tables are restored with the scope DATABASE or BOTH.', 'tables');
  }
  for (const [list, field] of [
    [paths, 'paths'],
    [tables, 'tables'],
  ] as const) {
    if (list != null && (list.length < 1 || list.length > PATHS_MAX)) {
      throw new InvalidInputError(`Choose 1 to ${PATHS_MAX} ${field} to restore.`, field);
    }
  }
  if (!snapshot.indexedAt) {
    throw new InvalidInputError(
      'This backup has not been read for browsing yet: index it first (indexSnapshot), then choose what to restore.',
      paths != null ? 'paths' : 'tables',
    );
  }
  let chosenPaths: string[] | null = null;
  if (paths != null) {
    for (const p of paths) {
      const problem = pathProblem(p);
      if (problem)
        throw new InvalidInputError(`${problem} (${JSON.stringify(p.slice(0, 200))})`, 'paths');
    }
    const unique = [...new Set(paths)].sort();
    const found = await indexedPaths(scope.em, snapshot.id, unique);
    const missing = unique.find((p) => !found.has(p));
    if (missing !== undefined) {
      throw new InvalidInputError(
        `This backup has no ${JSON.stringify(missing.slice(0, 200))}.`,
        'paths',
      );
    }
    // Sorted by code unit, a folder comes before what is inside it.
    chosenPaths = [];
    for (const p of unique) {
      const last = chosenPaths.at(-1);
      if (last !== undefined && p.startsWith(`${last}/`)) continue;
      chosenPaths.push(p);
    }
  }
  let chosenTables: string[] | null = null;
  if (tables != null) {
    for (const name of tables) {
      const problem = tableNameProblem(name);
      if (problem) throw new InvalidInputError(problem, 'tables');
    }
    const unique = [...new Set(tables)];
    const known = new Set((await listTables(scope.em, snapshot.id)).map((t) => t.name));
    const missing = unique.find((name) => !known.has(name));
    if (missing !== undefined) {
      throw new InvalidInputError(
        `This backup's database has no table ${JSON.stringify(missing)}.`,
        'tables',
      );
    }
    chosenTables = unique;
  }
  return { paths: chosenPaths, tables: chosenTables };
}

export async function requestRestore(
  scope: RequestScope,
  input: {
    snapshotId: string;
    scope: JobScope;
    confirmation: string;
    customerId?: string | null;
    paths?: readonly string[] | null;
    tables?: readonly string[] | null;
  },
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
  const choice = await partialChoice(scope, snapshot, input.scope, input);
  await checkJobRate(scope, customer.id);
  const job = await scope.services.jobs.create({
    customer,
    kind: 'restore',
    scope: input.scope,
    source: asSnapshotSource(snapshot.source),
    snapshotId: snapshot.snapshotId,
    label: snapshot.label ?? null,
    paths: choice.paths,
    tables: choice.tables,
    ...requester(viewer),
  });
  await recordAudit(scope.em, {
    action: 'restore_requested',
    actor: actorOf(viewer),
    customerId: customer.id,
    targetId: job.id,
    ip: scope.ip,
    details: {
      scope: input.scope,
      snapshotId: snapshot.snapshotId,
      source: snapshot.source,
      ...(choice.paths ? { paths: choice.paths.length } : {}),
      ...(choice.tables ? { tables: choice.tables } : {}),
    },
  });
  return job;
}

/** What indexSnapshot answers: the snapshot, and the job indexing it (none: indexed already). */
export interface IndexRequest {
  snapshot: ISnapshot;
  job: IBackupJob | null;
}

/**
 * An INDEX job for one of the customer's snapshots, unless it is indexed already or being
 * indexed (that job is answered). Another snapshot of theirs being indexed: JOB_IN_PROGRESS.
 */
export async function requestIndex(
  scope: RequestScope,
  input: { snapshotId: string; customerId?: string | null },
): Promise<IndexRequest> {
  const customer = await targetCustomer(scope, input.customerId);
  const viewer = scope.viewer as Viewer;
  const snapshot = await customerSnapshot(scope, customer.id, input.snapshotId);
  if (snapshot.indexedAt) return { snapshot, job: null };
  await checkJobRate(scope, customer.id);
  try {
    const job = await scope.services.jobs.create({
      customer,
      kind: 'index',
      scope: asBackupScope(snapshot.scope),
      source: asSnapshotSource(snapshot.source),
      snapshotId: snapshot.snapshotId,
      ...requester(viewer),
    });
    return { snapshot, job };
  } catch (error) {
    if (!(error instanceof JobInProgressError)) throw error;
    if (error.job?.snapshotId === snapshot.snapshotId) return { snapshot, job: error.job };
    error.message =
      'Another backup of this site is being read for browsing. Wait for it to finish.';
    throw error;
  }
}

function checkSnapshotId(snapshotId: string): void {
  if (!SNAPSHOT_ID_PATTERN.test(snapshotId)) {
    throw new InvalidInputError(
      'A snapshot id is 8 to 64 characters of 0-9 and a-f.',
      'snapshotId',
    );
  }
}

/** A snapshot id as a customer names it, in their own catalog: INVALID_INPUT, NOT_FOUND. */
export async function customerSnapshot(
  scope: Pick<RequestScope, 'em'>,
  customerId: number,
  snapshotId: string,
): Promise<ISnapshot> {
  checkSnapshotId(snapshotId);
  const snapshot = await findCustomerSnapshot(scope.em, customerId, snapshotId);
  if (!snapshot) throw new NotFoundError('There is no such backup.');
  return snapshot;
}

/** customerSnapshot for reads (GraphQL's Snapshot fields): a plain row, no entity. */
export async function customerSnapshotView(
  scope: Pick<RequestScope, 'em'>,
  customerId: number,
  snapshotId: string,
): Promise<SnapshotView> {
  checkSnapshotId(snapshotId);
  const snapshot = await findCustomerSnapshotView(scope.em, customerId, snapshotId);
  if (!snapshot) throw new NotFoundError('There is no such backup.');
  return snapshot;
}

/**
 * A restore drill of one of the customer's backups (DESIGN.md §12): any snapshot of their
 * catalog, on request of the customer or an admin token. It never touches the live site.
 */
export async function requestVerify(
  scope: RequestScope,
  input: { snapshotId: string; customerId?: string | null },
): Promise<IBackupJob> {
  const customer = await targetCustomer(scope, input.customerId);
  const viewer = scope.viewer as Viewer;
  const snapshot = await customerSnapshot(scope, customer.id, input.snapshotId);
  await checkJobRate(scope, customer.id);
  const job = await scope.services.jobs.create({
    customer,
    kind: 'verify',
    scope: asBackupScope(snapshot.scope),
    source: asSnapshotSource(snapshot.source),
    snapshotId: snapshot.snapshotId,
    label: snapshot.label ?? null,
    ...requester(viewer),
  });
  await recordAudit(scope.em, {
    action: 'verify_requested',
    actor: actorOf(viewer),
    customerId: customer.id,
    targetId: job.id,
    ip: scope.ip,
    details: { snapshotId: snapshot.snapshotId, source: snapshot.source },
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
