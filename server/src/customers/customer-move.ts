import { type EntityManager, LockMode } from '@mikro-orm/mariadb';
import { BackupJob, type IBackupJob } from '../jobs/job.entity.js';
import type { JobStore } from '../jobs/job-store.js';
import { Customer } from './customer.entity.js';

/** A node's name, as BACKUPS_NODE takes it (config.ts). */
const NODE_NAME = /^[a-z0-9][a-z0-9.-]{0,62}$/;

export type MoveRefusal =
  | 'INVALID_NODE'
  | 'UNKNOWN_NODE'
  | 'CUSTOMER_NOT_FOUND'
  | 'SAME_NODE'
  | 'JOB_RUNNING';

/** The move is refused; nothing was changed. */
export class CustomerMoveError extends Error {
  constructor(
    readonly code: MoveRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'CustomerMoveError';
  }
}

export interface MoveDeps {
  em: EntityManager;
  jobs: JobStore;
  /** Whether `node` is a hosting node: customers live there, or its worker is running. */
  nodeKnown(node: string): Promise<boolean>;
}

export interface MoveResult {
  customerId: number;
  from: string;
  to: string;
  /** The pending jobs now queued on the new node. */
  moved: Pick<IBackupJob, 'id' | 'kind' | 'source'>[];
}

/**
 * Moves a customer to another hosting node: their `host` changes and their pending jobs leave
 * the old node's queues for the new node's, in the same lanes. Refused while a job of theirs
 * runs or its script is still at its housekeeping (a restore's undo point, retention): that
 * script runs on the old node, under its lock, and would race the new node's next job. The
 * customer's jobs and row are locked while they are checked, so a job claimed meanwhile is either
 * seen running here or, claimed after the commit, refused by the old node's worker (JobStore.claim
 * reads the customer's node in the same statement). Snapshot rows do not change: they name a
 * repository by kind, and the new node's worker reads its own configured repositories.
 */
export async function moveCustomer(
  deps: MoveDeps,
  customerId: number,
  to: string,
): Promise<MoveResult> {
  if (!NODE_NAME.test(to)) {
    throw new CustomerMoveError(
      'INVALID_NODE',
      `"${to}" is not a node name (lowercase letters, digits, dots and dashes, as BACKUPS_NODE)`,
    );
  }
  const existing = await deps.em.fork().findOne(Customer, customerId, { fields: ['host'] });
  if (!existing) {
    throw new CustomerMoveError('CUSTOMER_NOT_FOUND', `there is no customer ${customerId}`);
  }
  if (existing.host === to) {
    throw new CustomerMoveError('SAME_NODE', `customer ${customerId} is already on node ${to}`);
  }
  if (!(await deps.nodeKnown(to))) {
    throw new CustomerMoveError(
      'UNKNOWN_NODE',
      `unknown node ${to}: no customer lives there and no worker of that name is running (start its worker first, with BACKUPS_NODE=${to})`,
    );
  }
  const { from, pending } = await deps.em.fork().transactional(async (em) => {
    // The job rows first, then the customer's: the order a worker's claim locks them in (the
    // job, then the customer its statement reads), so the two wait for each other, never deadlock.
    const jobs = await em.find(
      BackupJob,
      {
        customer: customerId,
        $or: [{ status: { $in: ['pending', 'running'] } }, { settledAt: null }],
      },
      { lockMode: LockMode.PESSIMISTIC_WRITE, orderBy: { id: 'asc' } },
    );
    const customer = await em.findOne(Customer, customerId, {
      lockMode: LockMode.PESSIMISTIC_WRITE,
    });
    if (!customer) {
      throw new CustomerMoveError('CUSTOMER_NOT_FOUND', `there is no customer ${customerId}`);
    }
    if (customer.host === to) {
      throw new CustomerMoveError('SAME_NODE', `customer ${customerId} is already on node ${to}`);
    }
    const busy = jobs.find((j) => j.status !== 'pending');
    if (busy) {
      const what =
        busy.status === 'running'
          ? `is running (${busy.phase ?? 'starting'})`
          : `is ${busy.status} and its script is still finishing on node ${customer.host} (undo point, retention, cleanup)`;
      throw new CustomerMoveError(
        'JOB_RUNNING',
        `customer ${customerId} was not moved: job ${busy.id} (${busy.kind}) ${what}. Move them once it has ended (jobs:show ${busy.id}); nothing was changed`,
      );
    }
    const from = customer.host;
    await em.nativeUpdate(Customer, { id: customerId }, { host: to });
    return { from, pending: jobs };
  });
  await deps.jobs.requeue(pending, from, to);
  return {
    customerId,
    from,
    to,
    moved: pending.map((j) => ({ id: j.id, kind: j.kind, source: j.source })),
  };
}
