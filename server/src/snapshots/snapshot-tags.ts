import type { BackupScope, SnapshotSource } from './snapshot-scope.js';
import { scopeOfScript } from './snapshot-scope.js';

/** What the restic tags of a snapshot say about it (tags written by scripts/customer-backup). */
export interface TagFacts {
  customerId: number | null;
  source: SnapshotSource | null;
  scope: BackupScope | null;
  label: string | null;
  jobId: number | null;
}

export function readTags(tags: readonly string[]): TagFacts {
  const facts: TagFacts = { customerId: null, source: null, scope: null, label: null, jobId: null };
  for (const tag of tags) {
    const customer = /^customer-([1-9]\d{0,11})$/.exec(tag);
    if (customer?.[1]) facts.customerId = Number(customer[1]);
    else if (tag === 'manual' || tag === 'daily' || tag === 'safety') facts.source = tag;
    else if (scopeOfScript(tag)) facts.scope = scopeOfScript(tag);
    else if (tag.startsWith('label:')) {
      facts.label = Buffer.from(tag.slice(6), 'base64url').toString('utf8').slice(0, 200);
    } else {
      const job = /^job-([1-9]\d{0,11})$/.exec(tag);
      if (job?.[1]) facts.jobId = Number(job[1]);
    }
  }
  return facts;
}
