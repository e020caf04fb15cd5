import { createMutation, createQuery } from '@urql/solid';
import { createSignal, createUniqueId, For, Show } from 'solid-js';
import { useAppClient } from '../app-context';
import { formatDateTime } from '../format';
import { failureMessage, queryErrorMessage } from '../graphql/results';
import {
  AdminCreateBackupMutation,
  AdminCustomerQuery,
  AdminCustomersQuery,
  AdminNodesQuery,
  AdminRestoreMutation,
  StaffSignInMutation,
  StaffViewerQuery,
} from './admin-documents';

/**
 * The support staff's view (#/admin): their own sign-in, the nodes' status, finding a
 * customer, their jobs and backups, and a backup or restore started for them. The api refuses
 * every admin query to anyone without admin rights, so a customer who opens it sees the
 * staff sign-in and nothing else.
 */
export function AdminPage() {
  const app = useAppClient();
  const [viewer] = createQuery({ query: StaffViewerQuery });
  return (
    <Show
      when={viewer.data?.staffMe}
      fallback={
        <Show when={!viewer.fetching || viewer.data}>
          <StaffSignIn onSignedIn={() => app.renew()} />
        </Show>
      }
    >
      {(staff) => (
        <main id="main" class="content admin" tabIndex={-1}>
          <header class="admin-header">
            <h1 id="page-title" tabIndex={-1}>
              Support
            </h1>
            <span class="muted">Signed in as {staff().name}</span>
          </header>
          <NodeStatusTable />
          <CustomerFinder />
        </main>
      )}
    </Show>
  );
}

function StaffSignIn(props: { onSignedIn: () => void }) {
  const emailId = createUniqueId();
  const passwordId = createUniqueId();
  const [email, setEmail] = createSignal('');
  const [password, setPassword] = createSignal('');
  const [error, setError] = createSignal<string | null>(null);
  const [state, signIn] = createMutation(StaffSignInMutation);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const result = await signIn({ email: email().trim(), password: password() });
    const message = failureMessage(result.error, result.data?.staffSignIn);
    if (message) setError(message);
    else props.onSignedIn();
  };
  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} aria-labelledby="staff-signin-title">
        <h1 id="staff-signin-title">Support sign-in</h1>
        <div class="field">
          <label for={emailId}>Staff email address</label>
          <input
            id={emailId}
            type="email"
            autocomplete="username"
            required
            value={email()}
            onInput={(event) => setEmail(event.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for={passwordId}>Password</label>
          <input
            id={passwordId}
            type="password"
            autocomplete="current-password"
            required
            value={password()}
            onInput={(event) => setPassword(event.currentTarget.value)}
          />
        </div>
        <Show when={error()}>
          <p class="error" role="alert">
            {error()}
          </p>
        </Show>
        <button type="submit" class="button primary" disabled={state.fetching}>
          Sign in
        </button>
      </form>
    </main>
  );
}

function NodeStatusTable() {
  const [nodes] = createQuery({ query: AdminNodesQuery });
  return (
    <section class="card" aria-labelledby="nodes-title">
      <h2 id="nodes-title">Nodes</h2>
      <Show when={queryErrorMessage(nodes.error)}>
        {(message) => <p role="alert">{message()}</p>}
      </Show>
      <table class="admin-table">
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Worker</th>
            <th scope="col">Running</th>
            <th scope="col">Waiting</th>
            <th scope="col">Tonight: done / failed / missing</th>
            <th scope="col">No daily backup for 36 h</th>
          </tr>
        </thead>
        <tbody>
          <For each={nodes.data?.adminNodes ?? []}>
            {(n) => (
              <tr>
                <th scope="row">{n.node}</th>
                <td>{n.workerAlive ? 'running' : 'NOT RUNNING'}</td>
                <td>{n.running}</td>
                <td>{n.jobsQueue.waiting + n.dailyQueue.waiting}</td>
                <td>
                  {n.dailyDone} / {n.dailyFailed} / {n.dailyMissing}
                </td>
                <td>
                  {n.staleCustomers} of {n.customers}
                </td>
              </tr>
            )}
          </For>
        </tbody>
      </table>
    </section>
  );
}

function CustomerFinder() {
  const searchId = createUniqueId();
  const [text, setText] = createSignal('');
  const [search, setSearch] = createSignal('');
  const [selected, setSelected] = createSignal<string | null>(null);
  const [found] = createQuery({
    query: AdminCustomersQuery,
    variables: () => ({ search: search() }),
    pause: () => search() === '',
  });
  return (
    <section class="card" aria-labelledby="find-title">
      <h2 id="find-title">Find a customer</h2>
      <form
        class="admin-search"
        onSubmit={(event) => {
          event.preventDefault();
          setSelected(null);
          setSearch(text().trim());
        }}
      >
        <label for={searchId}>Email, name or customer number</label>
        <input
          id={searchId}
          type="search"
          value={text()}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit" class="button">
          Find
        </button>
      </form>
      <Show when={search() !== '' && found.data}>
        <ul class="admin-results" aria-label="Customers found">
          <For each={found.data?.adminCustomers ?? []} fallback={<li>No customer matches.</li>}>
            {(c) => (
              <li>
                <button type="button" class="button link" onClick={() => setSelected(c.id)}>
                  {c.name} ({c.email})
                </button>{' '}
                <span class="muted">
                  customer {c.id}, node {c.host}
                </span>
              </li>
            )}
          </For>
        </ul>
      </Show>
      <Show when={selected()} keyed>
        {(id) => <CustomerDetail id={id} />}
      </Show>
    </section>
  );
}

function CustomerDetail(props: { id: string }) {
  const [customer, refetch] = createQuery({
    query: AdminCustomerQuery,
    variables: () => ({ id: props.id }),
    requestPolicy: 'network-only',
  });
  const [notice, setNotice] = createSignal<string | null>(null);
  const [, backup] = createMutation(AdminCreateBackupMutation);
  const [, restore] = createMutation(AdminRestoreMutation);
  const again = () => refetch({ requestPolicy: 'network-only' });

  const startBackup = async () => {
    const result = await backup({ customerId: props.id, scope: 'BOTH' });
    const payload = result.data?.createBackup;
    const message = failureMessage(result.error, payload);
    setNotice(
      message ??
        `Backup started (job ${payload?.__typename === 'CreateBackupSuccess' ? payload.job.id : ''}).`,
    );
    again();
  };
  const startRestore = async (snapshotId: string, scope: 'DATABASE' | 'FILES' | 'BOTH') => {
    const typed = window.prompt(
      'This replaces the live site. Type RESTORE to restore this backup.',
    );
    if (typed !== 'RESTORE') return;
    const result = await restore({ customerId: props.id, snapshotId, scope });
    const payload = result.data?.restoreSnapshot;
    const message = failureMessage(result.error, payload);
    setNotice(
      message ??
        `Restore started (job ${payload?.__typename === 'RestoreSnapshotSuccess' ? payload.job.id : ''}).`,
    );
    again();
  };

  return (
    <Show when={customer.data?.customer}>
      {(c) => (
        <section class="admin-customer" aria-labelledby="customer-title">
          <h3 id="customer-title">
            {c().name} · {c().email}
          </h3>
          <p class="muted">
            Customer {c().id} on node {c().host}
          </p>
          <button type="button" class="button primary" onClick={startBackup}>
            Back up now (database and files)
          </button>
          <Show when={notice()}>
            <p role="status" class="notice">
              {notice()}
            </p>
          </Show>
          <h4>Recent jobs</h4>
          <table class="admin-table" aria-label="Recent jobs">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Asked</th>
              </tr>
            </thead>
            <tbody>
              <For
                each={c().jobs}
                fallback={
                  <tr>
                    <td colSpan={4}>No jobs yet.</td>
                  </tr>
                }
              >
                {(job) => (
                  <tr>
                    <td>{job.id}</td>
                    <td>
                      {job.kind.toLowerCase()} ({job.scope.toLowerCase()})
                    </td>
                    <td>
                      {job.status.toLowerCase()}
                      {job.errorCode ? ` ${job.errorCode}` : ''}
                    </td>
                    <td>{formatDateTime(job.createdAt)}</td>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
          <h4>Backups</h4>
          <ul aria-label="Backups">
            <For
              each={[
                ...c().manual.map((s) => ({ ...s, kind: 'manual' })),
                ...c().daily.map((s) => ({ ...s, kind: 'daily' })),
              ]}
              fallback={<li>No backups yet.</li>}
            >
              {(s) => (
                <li>
                  {s.kind} {s.shortId} ({s.scope.toLowerCase()}), {formatDateTime(s.createdAt)}{' '}
                  <button
                    type="button"
                    class="button link"
                    onClick={() => startRestore(s.id, s.scope)}
                  >
                    Restore
                  </button>
                </li>
              )}
            </For>
          </ul>
        </section>
      )}
    </Show>
  );
}
