import type { MikroORM } from '@mikro-orm/mariadb';
import type { ScriptEvent } from '../executors/script-events.js';
import type { JobStore } from '../jobs/job-store.js';
import { recordSnapshot } from '../snapshots/catalog.js';
import { readTags } from '../snapshots/snapshot-tags.js';

/**
 * Events of `customer-restore --recover` / `--recover-all`: an undo point stored by a recovery
 * (its restore was killed, or its repository failed, after the switch-over) goes into the
 * catalog, and onto its restore job's row when its tags name one. The customer and the job
 * come from the snapshot's own tags (written by the script from its validated arguments); a
 * job is only touched if it is a restore of that customer.
 */
export function recordRecoveredUndoPoints(deps: { orm: MikroORM; store: JobStore }) {
  return async (event: ScriptEvent): Promise<void> => {
    if (event.type !== 'snapshot' || event.kind !== 'safety') return;
    const facts = readTags(event.tags);
    if (facts.customerId === null) return;
    await recordSnapshot(deps.orm.em.fork(), {
      customerId: facts.customerId,
      source: 'safety',
      scope: facts.scope ?? 'both',
      snapshot: event,
    });
    if (facts.jobId === null) return;
    await deps.store.attachUndoPoint({ id: facts.jobId, customerId: facts.customerId }, event.id);
  };
}
