import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { listSnapshots, type SnapshotView } from './catalog-read.js';
import { asBackupScope, asSnapshotSource } from './snapshot-scope.js';

// GraphQL values are upper case; the database's (and the entities') are lower case.

export const BackupScopeEnum = builder.enumType('BackupScope', {
  values: {
    DATABASE: { value: 'database' },
    FILES: { value: 'files' },
    BOTH: { value: 'both' },
  } as const,
});

export const SnapshotSourceEnum = builder.enumType('SnapshotSource', {
  values: {
    MANUAL: { value: 'manual' },
    DAILY: { value: 'daily' },
    SAFETY: { value: 'safety' },
  } as const,
});

export const SnapshotRef = builder.objectRef<SnapshotView>('Snapshot');

SnapshotRef.implement({
  description: 'A backup a customer can restore, from the catalog',
  fields: (t) => ({
    id: t.exposeID('snapshotId', { description: 'the full 64-hex restic snapshot id' }),
    shortId: t.exposeString('shortId'),
    source: t.field({ type: SnapshotSourceEnum, resolve: (s) => asSnapshotSource(s.source) }),
    scope: t.field({ type: BackupScopeEnum, resolve: (s) => asBackupScope(s.scope) }),
    createdAt: t.field({ type: 'DateTime', resolve: (s) => s.timeIso ?? s.time }),
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
    // Plain rows through the connection: the request's own fork (identity map) is not needed.
    resolve: (customer, args, ctx) =>
      listSnapshots(ctx.services.orm.em, customer.id, args.source ?? null),
  }),
);
