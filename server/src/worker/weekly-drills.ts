import type { EntityManager } from '@mikro-orm/mariadb';
import { Customer, type ICustomer } from '../customers/customer.entity.js';
import type { Logger } from '../infra/logger.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import { type JobStore, QueueUnavailableError } from '../jobs/job-store.js';
import { Snapshot } from '../snapshots/snapshot.entity.js';

const DAY_MS = 86_400_000;

/**
 * The customers of a node whose drill falls on `day` (DESIGN.md §12: each customer's newest
 * daily snapshot once a week, spread evenly so a node's nights are not crowded): the node's
 * customers in id order, the k-th drilled on the days where (days since 1970) % 7 == k % 7.
 * Over any 7 consecutive days each customer comes once, and no day has more than
 * ceil(n / 7) of them. A customer added or removed shifts the later ones by a day at most.
 */
export function drillsOnDay(customerIds: readonly number[], day: Date): number[] {
  const slot = Math.floor(day.getTime() / DAY_MS) % 7;
  return [...customerIds].sort((a, b) => a - b).filter((_id, rank) => rank % 7 === slot);
}

/** The customer's newest snapshot of a source, from the catalog. */
export async function newestSnapshot(
  em: EntityManager,
  customerId: number,
  source: 'daily' | 'manual' | null = 'daily',
) {
  return em.findOne(
    Snapshot,
    source ? { customer: customerId, source } : { customer: customerId, source: { $ne: 'safety' } },
    { orderBy: { time: 'desc', id: 'desc' } },
  );
}

export interface DrillRun {
  enqueued: number[];
  /** customers with a drill already waiting or running */
  busy: number[];
  /** customers without a daily snapshot to drill */
  nothing: number[];
  unqueued: number[];
}

/** A VERIFY job of each customer's newest daily snapshot (the daily lane). */
export async function enqueueDrills(
  deps: { em: EntityManager; store: JobStore; logger: Logger },
  customers: readonly ICustomer[],
  requester: { requestedByKind: 'schedule' | 'operator'; requestedById: string | null },
): Promise<DrillRun> {
  const run: DrillRun = { enqueued: [], busy: [], nothing: [], unqueued: [] };
  for (const customer of customers) {
    const snapshot = await newestSnapshot(deps.em, customer.id, 'daily');
    if (!snapshot) {
      run.nothing.push(customer.id);
      continue;
    }
    try {
      const job = await deps.store.create({
        customer,
        kind: 'verify',
        scope: snapshot.scope,
        source: 'daily',
        snapshotId: snapshot.snapshotId,
        ...requester,
      });
      run.enqueued.push(job.id);
    } catch (error) {
      if (error instanceof JobInProgressError) run.busy.push(customer.id);
      else if (error instanceof QueueUnavailableError) run.unqueued.push(customer.id);
      else throw error;
    }
  }
  return run;
}

/** The drills of the node's customers whose day is `day`. */
export async function enqueueWeeklyDrills(
  deps: { em: EntityManager; store: JobStore; logger: Logger; node: string },
  day: Date,
): Promise<DrillRun> {
  const customers = await deps.em.find(Customer, { host: deps.node }, { orderBy: { id: 'asc' } });
  const today = new Set(
    drillsOnDay(
      customers.map((c) => c.id),
      day,
    ),
  );
  const run = await enqueueDrills(
    deps,
    customers.filter((c) => today.has(c.id)),
    { requestedByKind: 'schedule', requestedById: null },
  );
  deps.logger.info(
    { enqueued: run.enqueued.length, busy: run.busy.length, nothing: run.nothing.length },
    'weekly drills enqueued',
  );
  return run;
}
