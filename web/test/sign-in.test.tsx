import { render, screen } from '@solidjs/testing-library';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SignInPage } from '../src/pages/SignIn';
import { createFakeApi } from './fake-api';

describe('sign-in page', () => {
  it('signs in with the labelled email and password fields', async () => {
    const user = userEvent.setup();
    const api = createFakeApi({
      SignIn: () => ({
        signIn: {
          __typename: 'SignInSuccess',
          customer: { id: '7', name: 'Ada', email: 'ada@example.test' },
        },
      }),
    });
    const onSignedIn = vi.fn();
    render(() => <SignInPage onSignedIn={onSignedIn} />, { wrapper: api.Wrapper });
    await user.type(screen.getByLabelText('Email address'), 'ada@example.test');
    await user.type(screen.getByLabelText('Password'), 'correct horse');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(api.callsOf('SignIn')[0]?.variables).toEqual({
      email: 'ada@example.test',
      password: 'correct horse',
    });
    expect(onSignedIn).toHaveBeenCalledOnce();
  });

  it('shows the message of a refused sign-in as an alert', async () => {
    const user = userEvent.setup();
    const api = createFakeApi({
      SignIn: () => ({
        signIn: {
          __typename: 'InvalidCredentialsError',
          code: 'INVALID_CREDENTIALS',
          message: 'That email address and password do not match.',
        },
      }),
    });
    const onSignedIn = vi.fn();
    render(() => <SignInPage onSignedIn={onSignedIn} />, { wrapper: api.Wrapper });
    await user.type(screen.getByLabelText('Email address'), 'ada@example.test');
    await user.type(screen.getByLabelText('Password'), 'wrong{Enter}');
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'That email address and password do not match.',
    );
    expect(onSignedIn).not.toHaveBeenCalled();
  });

  it('asks for both fields before sending anything', async () => {
    const user = userEvent.setup();
    const api = createFakeApi({});
    render(() => <SignInPage onSignedIn={() => {}} />, { wrapper: api.Wrapper });
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(screen.getByRole('alert')).toHaveTextContent('Enter your email address and password.');
    expect(api.callsOf('SignIn')).toHaveLength(0);
  });

  it('offers "Sign in with <dashboard>" when single sign-on is configured, and not otherwise', async () => {
    const withSso = createFakeApi({
      SingleSignOn: () => ({
        singleSignOn: { name: 'Hosting Dashboard', startUrl: '/auth/oidc/start' },
      }),
    });
    const { unmount } = render(() => <SignInPage onSignedIn={() => undefined} />, {
      wrapper: withSso.Wrapper,
    });
    const link = await screen.findByRole('link', { name: 'Sign in with Hosting Dashboard' });
    expect(link).toHaveAttribute('href', '/auth/oidc/start');
    unmount();

    const without = createFakeApi({ SingleSignOn: () => ({ singleSignOn: null }) });
    render(() => <SignInPage onSignedIn={() => undefined} />, { wrapper: without.Wrapper });
    await screen.findByRole('button', { name: 'Sign in' });
    expect(without.callsOf('SingleSignOn').length).toBeGreaterThan(0);
    expect(screen.queryByRole('link', { name: /Sign in with/ })).not.toBeInTheDocument();
  });
});
