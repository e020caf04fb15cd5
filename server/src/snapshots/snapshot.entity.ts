import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity.js';
import { BACKUP_SCOPES, SNAPSHOT_SOURCES } from './snapshot-scope.js';

/**
 * The snapshot catalog: one row per (restic snapshot, customer). A legacy daily snapshot that
 * holds many customers' folders gives one row for each of them. The api reads only this table.
 */
export const Snapshot = defineEntity({
  name: 'Snapshot',
  tableName: 'snapshots',
  uniques: [{ properties: ['snapshotId', 'customer'] }],
  indexes: [{ properties: ['customer', 'source', 'time'] }],
  properties: {
    id: p.integer().primary().unsigned().autoincrement(),
    source: p.enum([...SNAPSHOT_SOURCES]),
    snapshotId: p.string().length(64),
    shortId: p.string().length(16),
    customer: () => p.manyToOne(Customer).deleteRule('cascade'),
    time: p.datetime(),
    scope: p.enum([...BACKUP_SCOPES]),
    label: p.string().length(200).nullable(),
    sizeBytes: p.bigint('number').nullable(),
    paths: p.json<string[]>(),
    tags: p.json<string[]>(),
    createdByJobId: p.integer().unsigned().nullable(),
    syncedAt: p.datetime().onCreate(() => new Date()),
    /** When its index (snapshot_entries, snapshot_tables) was completed; null: none. */
    indexedAt: p.datetime().nullable(),
    /** When its index was last read (an index unread for BACKUPS_INDEX_KEEP_DAYS is dropped). */
    indexReadAt: p.datetime().nullable(),
    indexEntries: p.integer().unsigned().nullable(),
    /** Where the customer's content folder is in the site: wordpress or volumes/files. */
    contentFolder: p.string().length(32).nullable(),
  },
});

export type ISnapshot = InferEntity<typeof Snapshot>;
