import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import {
  asJobScope,
  asSnapshotSource,
  BackupScopeEnum,
  SnapshotSourceEnum,
} from '../graphql/enums.js';
import { listSnapshots, type SnapshotView } from './catalog-read.js';

export const SnapshotRef = builder.objectRef<SnapshotView>('Snapshot');

SnapshotRef.implement({
  description: 'A backup a customer can restore, from the catalog',
  fields: (t) => ({
    id: t.exposeID('snapshotId', { description: 'the full 64-hex restic snapshot id' }),
    shortId: t.exposeString('shortId'),
    source: t.field({ type: SnapshotSourceEnum, resolve: (s) => asSnapshotSource(s.source) }),
    scope: t.field({ type: BackupScopeEnum, resolve: (s) => asJobScope(s.scope) }),
    createdAt: t.field({ type: 'DateTime', resolve: (s) => s.time }),
    label: t.exposeString('label', { nullable: true }),
    sizeBytes: t.field({
      type: 'Bytes',
      nullable: true,
      resolve: (s) =>
        s.sizeBytes === null || s.sizeBytes === undefined ? null : Number(s.sizeBytes),
    }),
  }),
});

builder.objectField(CustomerRef, 'snapshots', (t) =>
  t.field({
    type: [SnapshotRef],
    description: 'newest first; MANUAL: at most 5; DAILY: the last 30 days; SAFETY: undo points',
    args: { source: t.arg({ type: SnapshotSourceEnum }) },
    resolve: (customer, args, ctx) => listSnapshots(ctx.em, customer.id, args.source ?? null),
  }),
);
