import { createMutation, createQuery } from '@urql/solid';
import { createSignal, createUniqueId, Show } from 'solid-js';
import { SignInMutation, SingleSignOnQuery } from '../graphql/documents';
import { failureMessage } from '../graphql/results';

export interface SignInPageProps {
  /** Shown above the form, e.g. when a session ended. */
  reason?: string | null | undefined;
  onSignedIn: () => void;
}

export function SignInPage(props: SignInPageProps) {
  const emailId = createUniqueId();
  const passwordId = createUniqueId();
  const [email, setEmail] = createSignal('');
  const [password, setPassword] = createSignal('');
  const [error, setError] = createSignal<string | null>(null);
  const [state, signIn] = createMutation(SignInMutation);
  const [sso] = createQuery({ query: SingleSignOnQuery });

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    if (!email().trim() || !password()) {
      setError('Enter your email address and password.');
      return;
    }
    setError(null);
    const result = await signIn({ email: email().trim(), password: password() });
    const payload = result.data?.signIn;
    const message = failureMessage(result.error, payload);
    if (message) {
      setError(message);
      return;
    }
    props.onSignedIn();
  };

  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} aria-labelledby="signin-title" novalidate>
        <h1 id="signin-title">Sign in to your backups</h1>
        <Show when={props.reason}>
          <p class="muted">{props.reason}</p>
        </Show>
        <div class="field">
          <label for={emailId}>Email address</label>
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
          <p class="form-error" role="alert">
            {error()}
          </p>
        </Show>
        <button type="submit" class="button primary wide" disabled={state.fetching}>
          {state.fetching ? 'Signing in…' : 'Sign in'}
        </button>
        <Show when={sso.data?.singleSignOn}>
          {(provider) => (
            <a class="button secondary wide" href={provider().startUrl}>
              Sign in with {provider().name}
            </a>
          )}
        </Show>
      </form>
    </main>
  );
}
