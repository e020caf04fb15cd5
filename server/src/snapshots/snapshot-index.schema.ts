import { CustomerRef } from '../customers/customer.schema.js';
import { builder } from '../graphql/builder.js';
import { InvalidInputError, NotFoundError, RateLimitedError } from '../graphql/errors.js';
import { GraphQLError } from '../graphql/graphql-runtime.js';
import { BackupJob } from '../jobs/job.entity.js';
import { BackupJobRef } from '../jobs/job.schema.js';
import { JobInProgressError } from '../jobs/job-errors.js';
import {
  customerSnapshot,
  customerSnapshotView,
  type IndexRequest,
  requestIndex,
} from '../jobs/job-requests.js';
import { previousSnapshot, type SnapshotView } from './catalog-read.js';
import {
  type ChangesView,
  compareIndexes,
  decodeCursor,
  type EntryPage,
  listFolder,
  listTables,
  pathProblem,
  type SnapshotEntryView,
  searchNames,
  type TableView,
  touchIndex,
} from './index-read.js';
import { SnapshotRef } from './snapshot.schema.js';

// Browsing a backup (DESIGN.md §10): every field reads the index of a catalog row the viewer
// already reached through their own catalog (me.snapshots, customer(id).snapshot(id), a job of
// theirs), so no field here looks further than that row.

const fieldError = (code: 'INVALID_INPUT' | 'NOT_FOUND', message: string) =>
  new GraphQLError(message, { extensions: { code } });

const EntryTypeEnum = builder.enumType('EntryType', {
  values: {
    FILE: { value: 'file' },
    DIRECTORY: { value: 'dir' },
    SYMLINK: { value: 'symlink' },
    OTHER: { value: 'other' },
  } as const,
});

const SnapshotEntryRef = builder.objectRef<SnapshotEntryView>('SnapshotEntry').implement({
  description: 'A file, folder or symlink of a backup (symlinks are listed, never followed)',
  fields: (t) => ({
    path: t.exposeString('path', { description: 'relative to the site folder' }),
    name: t.exposeString('name'),
    type: t.field({ type: EntryTypeEnum, resolve: (e) => e.type }),
    sizeBytes: t.field({ type: 'Bytes', nullable: true, resolve: (e) => e.sizeBytes }),
    modifiedAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.modifiedAt }),
    mode: t.exposeString('mode', { nullable: true, description: 'octal, e.g. 0644' }),
  }),
});

const SnapshotEntryConnectionRef = builder
  .objectRef<EntryPage>('SnapshotEntryConnection')
  .implement({
    fields: (t) => ({
      entries: t.field({ type: [SnapshotEntryRef], resolve: (p) => p.entries }),
      endCursor: t.exposeString('endCursor', { nullable: true }),
      hasMore: t.exposeBoolean('hasMore'),
    }),
  });

const DatabaseTableRef = builder.objectRef<TableView>('DatabaseTable').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    sizeBytes: t.field({
      type: 'Bytes',
      nullable: true,
      description: "the bytes of the table's rows in the backup's dump",
      resolve: (table) => table.sizeBytes,
    }),
  }),
});

type ChangesParent = ChangesView & { since: SnapshotView };

const SnapshotChangesRef = builder.objectRef<ChangesParent>('SnapshotChanges').implement({
  fields: (t) => ({
    since: t.field({ type: SnapshotRef, resolve: (c) => c.since }),
    added: t.field({ type: [SnapshotEntryRef], resolve: (c) => c.added }),
    removed: t.field({ type: [SnapshotEntryRef], resolve: (c) => c.removed }),
    modified: t.field({
      type: [SnapshotEntryRef],
      description: 'files whose size, time or type differ',
      resolve: (c) => c.modified,
    }),
    tablesAdded: t.stringList({ resolve: (c) => c.tablesAdded }),
    tablesRemoved: t.stringList({ resolve: (c) => c.tablesRemoved }),
    truncated: t.boolean({
      description: 'a list stopped at 1,000 entries',
      resolve: (c) => c.truncated,
    }),
  }),
});

const FIRST_MAX = 1000;

const hasControlOrSlash = (text: string) =>
  [...text].some((c) => c === '/' || (c.codePointAt(0) ?? 0) < 0x20);

function pageSize(first: number | null | undefined, fallback: number): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > FIRST_MAX) {
    throw fieldError('INVALID_INPUT', `first is 1 to ${FIRST_MAX}.`);
  }
  return n;
}

/** The index of a snapshot, for a read: not indexed is an error that says what to do. */
function requireIndex(snapshot: SnapshotView): void {
  if (!snapshot.indexedAt) {
    throw fieldError(
      'INVALID_INPUT',
      'This backup has not been read for browsing yet: ask for it with indexSnapshot.',
    );
  }
}

builder.objectFields(SnapshotRef, (t) => ({
  indexed: t.boolean({
    description: 'the file list is in the catalog (browse, search, changes, partial restore)',
    resolve: (s) => s.indexedAt != null,
  }),
  indexJob: t.field({
    type: BackupJobRef,
    nullable: true,
    description: 'the INDEX job reading this backup now, if any',
    resolve: (s, _args, ctx) =>
      ctx.em.findOne(BackupJob, {
        customer: s.customer.id,
        kind: 'index',
        snapshotId: s.snapshotId,
        status: { $in: ['pending', 'running'] },
      }),
  }),
  entries: t.field({
    type: SnapshotEntryConnectionRef,
    description:
      'a folder of the backup (path relative to the site folder), folders first, by name',
    args: {
      path: t.arg.string({ defaultValue: '' }),
      first: t.arg.int({ defaultValue: 200 }),
      after: t.arg.string(),
    },
    resolve: async (s, args, ctx) => {
      requireIndex(s);
      const folder = args.path ?? '';
      const problem = pathProblem(folder, true);
      if (problem) throw fieldError('INVALID_INPUT', problem);
      const first = pageSize(args.first, 200);
      const after = args.after ? decodeCursor(args.after) : null;
      if (args.after && !after)
        throw fieldError('INVALID_INPUT', 'That is not a cursor of this list.');
      const page = await listFolder(ctx.em, s.id, folder, first, after);
      if (!page) throw fieldError('NOT_FOUND', 'This backup has no such folder.');
      await touchIndex(ctx.em, s.id, s.indexReadAt);
      return page;
    },
  }),
  search: t.field({
    type: [SnapshotEntryRef],
    description:
      'files and folders whose name holds `name` (not case-sensitive), by name; `after`: the last path of the previous page',
    args: {
      name: t.arg.string({ required: true }),
      first: t.arg.int({ defaultValue: 50 }),
      after: t.arg.string(),
    },
    resolve: async (s, args, ctx) => {
      requireIndex(s);
      const name = args.name.trim();
      if (name.length < 1 || name.length > 255 || hasControlOrSlash(name)) {
        throw fieldError('INVALID_INPUT', 'Search for 1 to 255 characters of a name, without /.');
      }
      const after = args.after ?? null;
      const problem = after === null ? null : pathProblem(after);
      if (problem) throw fieldError('INVALID_INPUT', problem);
      await touchIndex(ctx.em, s.id, s.indexReadAt);
      return searchNames(ctx.em, s.id, name, pageSize(args.first, 50), after);
    },
  }),
  tables: t.field({
    type: [DatabaseTableRef],
    description: "the tables in the backup's database dump, by name",
    resolve: async (s, _args, ctx) => {
      requireIndex(s);
      await touchIndex(ctx.em, s.id, s.indexReadAt);
      return listTables(ctx.em, s.id);
    },
  }),
  changes: t.field({
    type: SnapshotChangesRef,
    nullable: true,
    description:
      "what changed since `since` (default: the customer's previous backup of the same scope); null until both are indexed",
    args: { since: t.arg.id() },
    resolve: async (s, args, ctx) => {
      let since: SnapshotView | null;
      if (args.since === null || args.since === undefined) {
        since = await previousSnapshot(ctx.em, s);
        if (!since) return null;
      } else {
        try {
          since = await customerSnapshot(ctx, s.customer.id, String(args.since));
        } catch (error) {
          if (error instanceof InvalidInputError) throw fieldError('INVALID_INPUT', error.message);
          throw fieldError('NOT_FOUND', 'There is no such backup.');
        }
      }
      if (!s.indexedAt || !since.indexedAt) return null;
      await touchIndex(ctx.em, s.id, s.indexReadAt);
      await touchIndex(ctx.em, since.id, since.indexReadAt);
      return { ...(await compareIndexes(ctx.em, s.id, since.id)), since };
    },
  }),
}));

builder.objectField(CustomerRef, 'snapshot', (t) =>
  t.field({
    type: SnapshotRef,
    description:
      "one of the customer's backups by id (full or an 8+ hex prefix); another customer's is NOT_FOUND",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (customer, args, ctx) => {
      try {
        return await customerSnapshotView(ctx, customer.id, String(args.id));
      } catch (error) {
        if (error instanceof InvalidInputError) throw fieldError('INVALID_INPUT', error.message);
        if (error instanceof NotFoundError) throw fieldError('NOT_FOUND', error.message);
        throw error;
      }
    },
  }),
);

const IndexSnapshotSuccess = builder.objectRef<IndexRequest>('IndexSnapshotSuccess').implement({
  fields: (t) => ({
    snapshot: t.field({ type: SnapshotRef, resolve: (r) => r.snapshot }),
    job: t.field({
      type: BackupJobRef,
      nullable: true,
      description: 'the INDEX job (live progress: jobUpdated); null when it is indexed already',
      resolve: (r) => r.job,
    }),
  }),
});

builder.mutationField('indexSnapshot', (t) =>
  t.field({
    type: IndexSnapshotSuccess,
    description: "reads a backup's file list and tables into the catalog, for browsing",
    args: {
      snapshotId: t.arg.id({ required: true }),
      customerId: t.arg.id({ description: 'admin tokens: the customer to act for' }),
    },
    authScopes: { signedIn: true },
    errors: {
      types: [JobInProgressError, InvalidInputError, NotFoundError, RateLimitedError],
      directResult: true,
      union: { name: 'IndexSnapshotResult' },
    },
    resolve: (_root, args, ctx) =>
      requestIndex(ctx, { snapshotId: String(args.snapshotId), customerId: args.customerId }),
  }),
);
