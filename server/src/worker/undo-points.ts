import type { MikroORM } from '@mikro-orm/mariadb';
import type { Redis } from 'ioredis';
import { BackupJob } from '../jobs/job.entity.js';
import { publishJobChanged } from '../jobs/job-events.js';
import { recordSnapshot } from '../snapshots/catalog.js';
import { readTags } from '../snapshots/snapshot-tags.js';
import type { ScriptEvent } from './script-events.js';

/**
 * Events of `customer-restore --recover` / `--recover-all`: an undo point stored by a recovery
 * (its restore was killed, or its repository failed, after the switch-over) goes into the
 * catalog, and onto its restore job's row when its tags name one. The customer and the job
 * come from the snapshot's own tags (written by the script from its validated arguments); a
 * job is only touched if it belongs to that customer.
 */
export function recordRecoveredUndoPoints(deps: { orm: MikroORM; redis: Redis; prefix: string }) {
  return async (event: ScriptEvent): Promise<void> => {
    if (event.type !== 'snapshot' || event.kind !== 'safety') return;
    const facts = readTags(event.tags);
    if (facts.customerId === null) return;
    const em = deps.orm.em.fork();
    await recordSnapshot(em, {
      customerId: facts.customerId,
      source: 'safety',
      scope: facts.scope ?? 'both',
      snapshot: event,
    });
    if (facts.jobId === null) return;
    const changed = await em.nativeUpdate(
      BackupJob,
      { id: facts.jobId, customer: facts.customerId, kind: 'restore' },
      { safetySnapshotId: event.id },
    );
    if (changed > 0) {
      await publishJobChanged(deps.redis, deps.prefix, {
        id: facts.jobId,
        customerId: facts.customerId,
      });
    }
  };
}
