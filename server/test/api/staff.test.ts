import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ICustomer } from '../../src/customers/customer.entity.js';
import { addStaffAccount } from '../../src/staff/staff-sign-in.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  adminToken,
  auditRows,
  buildSignInCustomer,
  customerToken,
  jobRows,
  PASSWORD,
} from './support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

const STAFF_PASSWORD = 'support desk password';
const STAFF_SIGN_IN = `mutation($email: String!, $password: String!) {
  staffSignIn(email: $email, password: $password) {
    __typename
    ... on StaffSignInSuccess { staff { id email } }
    ... on Error { code }
  }
}`;
const FIND = `query($search: String!) { adminCustomers(search: $search) { id email host } }`;
const NODES = '{ adminNodes { node workerAlive customers pending jobsQueue { waiting } } }';
/** Every admin query, each as a customer would try it. */
const ADMIN_QUERIES = [
  { query: FIND, variables: { search: '@' } },
  { query: NODES, variables: {} },
];

describe('support staff', () => {
  let db: TestDatabase;
  let api: TestApi;
  let alice: ICustomer;
  let bob: ICustomer;
  let staffCookie: string;
  let staffId: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApi({ db });
    alice = await buildSignInCustomer(db.orm.em);
    bob = await buildSignInCustomer(db.orm.em);
    const staff = await addStaffAccount(db.orm.em, {
      email: 'Helpdesk@Hosting.example',
      name: 'Help desk',
      password: STAFF_PASSWORD,
    });
    staffId = staff.id;
    const signIn = await api.gql(STAFF_SIGN_IN, {
      email: 'helpdesk@hosting.example',
      password: STAFF_PASSWORD,
    });
    expect(signIn.data?.staffSignIn.__typename).toBe('StaffSignInSuccess');
    staffCookie =
      signIn.setCookies.find((c) => c.startsWith('backups_session='))?.split(';')[0] ?? '';
    expect(staffCookie).not.toBe('');
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('a customer, signed in or with a token, gets FORBIDDEN for every admin query; anonymous UNAUTHENTICATED', async () => {
    const cookie = await api.signIn(alice.email, PASSWORD);
    const token = await customerToken(db.orm.em, alice);
    for (const { query, variables } of ADMIN_QUERIES) {
      for (const auth of [{ cookie }, { token }]) {
        const r = await api.gql(query, variables, auth);
        expect(r.errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN');
        expect(r.data ?? null).toBeNull();
      }
      const anonymous = await api.gql(query, variables);
      expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    // A customer's password is not a staff member's: the staff sign-in refuses it.
    const wrong = await api.gql(STAFF_SIGN_IN, { email: alice.email, password: PASSWORD });
    expect(wrong.data?.staffSignIn).toEqual({
      __typename: 'InvalidCredentialsError',
      code: 'INVALID_CREDENTIALS',
    });
    expect((await api.gql('{ staffMe { id } }', {}, { cookie })).data?.staffMe).toBeNull();
    // Node names are the hosting company's own.
    expect((await api.gql('{ me { host } }', {}, { cookie })).data?.me).toEqual({ host: null });
  });

  it('a staff member finds customers by email, name or id, with LIKE characters taken literally', async () => {
    const byEmail = await api.gql(
      FIND,
      { search: alice.email.slice(0, 12).toUpperCase() },
      { cookie: staffCookie },
    );
    expect(byEmail.data?.adminCustomers).toContainEqual({
      id: String(alice.id),
      email: alice.email,
      host: alice.host,
    });
    const byId = await api.gql(FIND, { search: String(bob.id) }, { cookie: staffCookie });
    expect(byId.data?.adminCustomers.map((c: { id: string }) => c.id)).toContain(String(bob.id));
    const wildcard = await api.gql(FIND, { search: '%' }, { cookie: staffCookie });
    expect(wildcard.data?.adminCustomers).toEqual([]);
    const empty = await api.gql(FIND, { search: '  ' }, { cookie: staffCookie });
    expect(empty.errors?.[0]?.extensions?.code).toBe('INVALID_INPUT');
    expect(
      (await api.gql('{ staffMe { email } }', {}, { cookie: staffCookie })).data?.staffMe,
    ).toEqual({
      email: 'helpdesk@hosting.example',
    });
    // Staff see the nodes as the CLI does (an admin token too).
    for (const auth of [{ cookie: staffCookie }, { token: await adminToken(db.orm.em) }]) {
      const nodes = await api.gql(NODES, {}, auth);
      expect(nodes.errors).toBeUndefined();
      expect(nodes.data?.adminNodes).toContainEqual({
        node: alice.host,
        workerAlive: false,
        customers: expect.any(Number),
        pending: 0,
        jobsQueue: { waiting: 0 },
      });
    }
  });

  it("a staff member starts a backup for a customer: the job is the customer's, the audit log names the staff member", async () => {
    const created = await api.gql(
      `mutation($customerId: ID) { createBackup(scope: DATABASE, customerId: $customerId) {
        __typename ... on CreateBackupSuccess { job { id status } } ... on Error { code } } }`,
      { customerId: String(bob.id) },
      { cookie: staffCookie },
    );
    expect(created.data?.createBackup.__typename).toBe('CreateBackupSuccess');
    const [job] = await jobRows(db.orm.em, bob);
    expect(job).toMatchObject({
      kind: 'backup',
      requestedByKind: 'admin',
      requestedById: `staff:${staffId}`,
    });
    expect((await auditRows(db.orm.em, 'backup_requested')).at(-1)).toMatchObject({
      actorKind: 'staff',
      actorId: String(staffId),
      customerId: bob.id,
    });
    // Without customerId a staff member acts for nobody.
    const unnamed = await api.gql(
      'mutation { createBackup(scope: DATABASE) { __typename ... on Error { code } } }',
      {},
      { cookie: staffCookie },
    );
    expect(unnamed.data?.createBackup).toEqual({
      __typename: 'InvalidInputError',
      code: 'INVALID_INPUT',
    });
  });

  it('the sixth staff sign-in for one email within a minute is RATE_LIMITED, even with the right password, and audited', async () => {
    await addStaffAccount(db.orm.em, {
      email: 'night-shift@hosting.example',
      name: 'Night shift',
      password: STAFF_PASSWORD,
    });
    for (let i = 0; i < 5; i++) {
      const r = await api.gql(STAFF_SIGN_IN, {
        email: 'night-shift@hosting.example',
        password: 'x',
      });
      expect(r.data?.staffSignIn.code).toBe('INVALID_CREDENTIALS');
    }
    const limited = await api.gql(STAFF_SIGN_IN, {
      email: 'night-shift@hosting.example',
      password: STAFF_PASSWORD,
    });
    expect(limited.data?.staffSignIn).toEqual({
      __typename: 'RateLimitedError',
      code: 'RATE_LIMITED',
    });
    expect(limited.setCookies).toEqual([]);
    expect((await auditRows(db.orm.em, 'sign_in_failed')).at(-1)?.details).toEqual({
      email: 'night-shift@hosting.example',
      staff: true,
      reason: 'rate_limited',
    });
  });
});
