import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { setCustomerPassword } from '../../src/customers/customer-service.js';
import { sql } from '../support/sandbox.js';
import { createWorkerWorld, type WorkerWorld } from '../worker/support/worker-env.js';
import { startTestApi, subscribe, type TestApi } from './support/test-api.js';

const PASSWORD = 'a long enough password';

describe('browsing a backup and what changed, through GraphQL', () => {
  let world: WorkerWorld;
  let api: TestApi;
  let a: ICustomer;
  let b: ICustomer;
  let cookie: string;
  let first: string;
  let second: string;
  let ofB: string;

  const content = (c: ICustomer) =>
    path.join(world.scriptsEnv.customersRoot, `customer-${c.id}`, 'wordpress');
  const backup = async (c: ICustomer) => {
    const job = await world.runJob({
      customer: c,
      kind: 'backup',
      scope: 'both',
      source: 'manual',
    });
    expect(job.status, job.errorMessage ?? '').toBe('completed');
    return job.snapshotId as string;
  };

  beforeAll(async () => {
    world = await createWorkerWorld();
    a = await world.customer('node-b');
    b = await world.customer('node-b');
    await setCustomerPassword(world.db.orm.em, a.id, PASSWORD);
    await world.startWorker('node-b');
    api = await startTestApi({ db: world.db, prefix: world.prefix });
    cookie = await api.signIn(a.email, PASSWORD);
    first = await backup(a);
    // Between the two backups: one file added, one removed, one edited; a table added.
    await writeFile(path.join(content(a), 'wp-content/uploads/2026/05/new-upload.txt'), 'new');
    await rm(path.join(content(a), 'wp-content/themes/shop-theme/part-3.php'));
    await writeFile(path.join(content(a), 'index.php'), '<?php // edited by the customer\n');
    await sql(`CREATE TABLE customer_${a.id}.added_table (a INT)`);
    second = await backup(a);
    ofB = await backup(b);
  });
  afterAll(async () => {
    await api?.stop();
    await world?.destroy();
  });

  const restoreSelected = async (variables: Record<string, unknown>) =>
    (
      await api.gql(
        `mutation($id: ID!, $scope: BackupScope!, $paths: [String!], $tables: [String!]) {
          restoreSnapshot(snapshotId: $id, scope: $scope, confirmation: "RESTORE", paths: $paths, tables: $tables) {
            __typename ... on RestoreSnapshotSuccess { job { id kind scope paths tables } } ... on Error { code message } } }`,
        variables,
        { cookie },
      )
    ).data?.restoreSnapshot;

  const index = async (id: string) => {
    const r = await api.gql(
      `mutation($id: ID!) { indexSnapshot(snapshotId: $id) { __typename
        ... on IndexSnapshotSuccess { job { id status } snapshot { indexed } } ... on Error { code message } } }`,
      { id },
      { cookie },
    );
    return r.data?.indexSnapshot;
  };

  it('a backup not indexed yet says so, and indexSnapshot indexes it with live progress', async () => {
    const before = await api.gql(
      `query($id: ID!) { me { snapshot(id: $id) { indexed entries { entries { name } } } } }`,
      { id: first },
      { cookie },
    );
    expect(before.errors?.[0]?.extensions?.code).toBe('INVALID_INPUT');
    expect(before.errors?.[0]?.message).toMatch(/indexSnapshot/);
    const restore = await restoreSelected({ id: first, scope: 'FILES', paths: ['index.php'] });
    expect(restore).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT' });
    expect(restore.message).toMatch(/index it first/);

    const asked = await index(first);
    expect(asked.__typename).toBe('IndexSnapshotSuccess');
    const watch = subscribe(
      api.wsClient({ cookie }),
      'subscription($id: ID!) { jobUpdated(id: $id) { kind status phase progress } }',
      { id: asked.job.id },
    );
    await watch.ended;
    const states = watch.results.map((r) => r.data?.jobUpdated);
    expect(states.at(-1)).toMatchObject({ kind: 'INDEX', status: 'COMPLETED', progress: 1 });
    const progress = states.map((s) => Number(s?.progress));
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    // Asked again: indexed already, no job.
    expect(await index(first)).toMatchObject({ job: null, snapshot: { indexed: true } });
  });

  it('entries lists a folder folders first, then by name, in pages; search finds names whatever their case', async () => {
    const list = async (folder: string, size: number, after: string | null) =>
      (
        await api.gql(
          `query($id: ID!, $path: String!, $first: Int!, $after: String) { me { snapshot(id: $id) {
            entries(path: $path, first: $first, after: $after) { entries { path name type sizeBytes modifiedAt mode } endCursor hasMore } } } }`,
          { id: first, path: folder, first: size, after },
          { cookie },
        )
      ).data?.me.snapshot.entries;
    const root = await list('', 200, null);
    const names = root.entries.map((e: { name: string }) => e.name);
    const types = root.entries.map((e: { type: string }) => e.type);
    expect(
      types.slice(0, types.lastIndexOf('DIRECTORY') + 1).every((t: string) => t === 'DIRECTORY'),
    ).toBe(true);
    expect(names).toContain('wp-content');
    expect(names).toContain('index.php');
    expect(root.hasMore).toBe(false);

    // Paged two at a time, the folder reads the same as in one page.
    const folder = 'wp-content/uploads/2026/03';
    const whole = await list(folder, 200, null);
    const paged: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await list(folder, 2, after);
      paged.push(...page.entries.map((e: { path: string }) => e.path));
      if (!page.hasMore) break;
      after = page.endCursor;
    }
    expect(paged).toEqual(whole.entries.map((e: { path: string }) => e.path));
    expect(paged).toHaveLength(15);
    expect(whole.entries[0]).toMatchObject({
      path: `${folder}/image-3-0.jpg`,
      type: 'FILE',
      sizeBytes: 2048,
      mode: '0644',
    });

    const found = await api.gql(
      `query($id: ID!) { me { snapshot(id: $id) { search(name: "IMAGE-12-1", first: 10) { path } } } }`,
      { id: first },
      { cookie },
    );
    expect(found.data?.me.snapshot.search.map((e: { path: string }) => e.path)).toEqual([
      'wp-content/uploads/2026/12/image-12-1.jpg',
      'wp-content/uploads/2026/12/image-12-10.jpg',
      'wp-content/uploads/2026/12/image-12-11.jpg',
      'wp-content/uploads/2026/12/image-12-12.jpg',
      'wp-content/uploads/2026/12/image-12-13.jpg',
      'wp-content/uploads/2026/12/image-12-14.jpg',
    ]);
  });

  it('changes lists exactly the file added, the one removed and the one edited between two backups', async () => {
    const query = `query($id: ID!) { me { snapshot(id: $id) { changes {
      since { id } added { path type } removed { path } modified { path sizeBytes } tablesAdded tablesRemoved truncated } } } }`;
    // Until both are indexed there is nothing to compare.
    const early = await api.gql(query, { id: second }, { cookie });
    expect(early.errors).toBeUndefined();
    expect(early.data?.me.snapshot.changes).toBeNull();

    expect((await index(second)).__typename).toBe('IndexSnapshotSuccess');
    const until = Date.now() + 60_000;
    let changes = null;
    while (!changes && Date.now() < until) {
      changes = (await api.gql(query, { id: second }, { cookie })).data?.me.snapshot.changes;
      if (!changes) await new Promise((r) => setTimeout(r, 200));
    }
    expect(changes).toEqual({
      since: { id: first },
      added: [{ path: 'wp-content/uploads/2026/05/new-upload.txt', type: 'FILE' }],
      removed: [{ path: 'wp-content/themes/shop-theme/part-3.php' }],
      modified: [{ path: 'index.php', sizeBytes: 32 }],
      tablesAdded: ['added_table'],
      tablesRemoved: [],
      truncated: false,
    });
    const tables = await api.gql(
      `query($id: ID!) { me { snapshot(id: $id) { tables { name sizeBytes } } } }`,
      { id: second },
      { cookie },
    );
    expect(tables.data?.me.snapshot.tables.map((t: { name: string }) => t.name)).toEqual([
      'added_table',
      'audit',
      'media',
      'options',
      'posts',
    ]);
  });

  it("another customer's backup is NOT_FOUND however it is named, and nothing is queued", async () => {
    const jobsBefore = await sql(`select count(*) from backup_jobs`, world.db.name);
    const browse = await api.gql(
      `query($id: ID!) { me { snapshot(id: $id) { entries { entries { path } } } } }`,
      { id: ofB },
      { cookie },
    );
    expect(browse.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(browse.data?.me ?? null).toBeNull();
    const prefix = await api.gql(
      `query($id: ID!) { me { snapshot(id: $id) { id } } }`,
      { id: ofB.slice(0, 8) },
      { cookie },
    );
    expect(prefix.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const since = await api.gql(
      `query($id: ID!, $since: ID!) { me { snapshot(id: $id) { changes(since: $since) { truncated } } } }`,
      { id: second, since: ofB },
      { cookie },
    );
    expect(since.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await index(ofB)).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
    const asOther = await api.gql(
      `query($c: ID!, $id: ID!) { customer(id: $c) { snapshot(id: $id) { id } } }`,
      { c: String(b.id), id: ofB },
      { cookie },
    );
    expect(asOther.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await sql(`select count(*) from backup_jobs`, world.db.name)).toBe(jobsBefore);
  });

  it('a partial restore with bad paths or tables is INVALID_INPUT and nothing is queued', async () => {
    const jobsBefore = await sql('select count(*) from backup_jobs', world.db.name);
    const queuedBefore = await api.queuedJobIds('node-b');
    const cases: [string, Record<string, unknown>][] = [
      ['a climbing path', { scope: 'FILES', paths: ['../customer-1/wordpress/index.php'] }],
      ['a climbing path inside', { scope: 'FILES', paths: ['wp-content/../../x'] }],
      ['an absolute path', { scope: 'FILES', paths: ['/etc/passwd'] }],
      ["the host's path of the site", { scope: 'FILES', paths: [content(a).slice(1)] }],
      ['a NUL byte', { scope: 'FILES', paths: ['index.php\u0000x'] }],
      ['a line break', { scope: 'FILES', paths: ['index.php\nwp-config.php'] }],
      ['a trailing slash', { scope: 'FILES', paths: ['wp-content/'] }],
      ['a path not in the backup', { scope: 'FILES', paths: ['wp-content/no-such-file.php'] }],
      ['a path of 4,097 bytes', { scope: 'FILES', paths: ['a'.repeat(4097)] }],
      ['1,001 paths', { scope: 'FILES', paths: Array.from({ length: 1001 }, (_, i) => `f${i}`) }],
      ['no paths at all', { scope: 'FILES', paths: [] }],
      ['paths with the database scope', { scope: 'DATABASE', paths: ['index.php'] }],
      ['tables with the files scope', { scope: 'FILES', tables: ['posts'] }],
      ['a table not in the dump', { scope: 'DATABASE', tables: ['wp_users'] }],
      ['a table name with a backtick', { scope: 'DATABASE', tables: ['posts`; DROP TABLE x'] }],
      ['a table name of 65 characters', { scope: 'DATABASE', tables: ['t'.repeat(65)] }],
    ];
    for (const [what, input] of cases) {
      const r = await restoreSelected({ id: second, ...input });
      expect(r, what).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT' });
    }
    expect(await sql('select count(*) from backup_jobs', world.db.name)).toBe(jobsBefore);
    expect(await api.queuedJobIds('node-b')).toEqual(queuedBefore);
  });

  it('a partial restore keeps its choice on the job: paths inside a chosen folder folded into it, tables once', async () => {
    const r = await restoreSelected({
      id: second,
      scope: 'BOTH',
      paths: [
        'wp-content/uploads/2026/05',
        'index.php',
        'wp-content/uploads/2026/05/new-upload.txt',
      ],
      tables: ['posts', 'added_table', 'posts'],
    });
    expect(r.__typename).toBe('RestoreSnapshotSuccess');
    expect(r.job).toMatchObject({
      kind: 'RESTORE',
      scope: 'BOTH',
      paths: ['index.php', 'wp-content/uploads/2026/05'],
      tables: ['posts', 'added_table'],
    });
    await world.waitForJob(Number(r.job.id), ['completed', 'failed']);
  });

  it('a folder path that climbs out, is absolute or holds a NUL is INVALID_INPUT', async () => {
    for (const bad of [
      '../customer-1',
      '/etc',
      'wp-content/../..',
      'a\u0000b',
      'wp-content/',
      'x\ny',
    ]) {
      const r = await api.gql(
        `query($id: ID!, $p: String!) { me { snapshot(id: $id) { entries(path: $p) { hasMore } } } }`,
        { id: first, p: bad },
        { cookie },
      );
      expect(r.errors?.[0]?.extensions?.code, JSON.stringify(bad)).toBe('INVALID_INPUT');
    }
    const missing = await api.gql(
      `query($id: ID!) { me { snapshot(id: $id) { entries(path: "no/such/folder") { hasMore } } } }`,
      { id: first },
      { cookie },
    );
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
