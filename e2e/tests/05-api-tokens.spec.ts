import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import { screenshot, signIn, sql } from '../support/helpers';

test('the API tokens page creates a token, shows it once, and the token works', async ({
  page,
  playwright,
}) => {
  const { other, baseUrl, dbName } = system();
  await signIn(page, other);
  await page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: 'API tokens' })
    .click();
  await expect(page.getByRole('heading', { name: 'API tokens', level: 1 })).toBeVisible();

  const name = `Deploy script ${Math.random().toString(36).slice(2, 6)}`;
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.getByText(`Token “${name}” created.`)).toBeVisible();
  const token = await page.getByLabel('Your new token').inputValue();
  expect(token.length).toBeGreaterThanOrEqual(20);
  await expect(page.getByRole('listitem').filter({ hasText: name })).toHaveCount(1);
  await expect(page.getByRole('button', { name: `Revoke ${name}` })).toBeVisible();
  await screenshot(page, 'api-tokens');

  // Only a hash is stored.
  const stored = await sql(
    `SELECT token_hash FROM api_tokens WHERE name = '${name}' AND customer_id = ${other.id}`,
    dbName,
  );
  expect(stored).toMatch(/^[0-9a-f]{64}$/);
  expect(stored).not.toContain(token);

  // An integrator uses it through nginx, without a session.
  const api = await playwright.request.newContext({ ignoreHTTPSErrors: true });
  try {
    const response = await api.post(`${baseUrl}/graphql`, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      data: { query: '{ me { email name } }' },
    });
    expect(response.status()).toBe(200);
    expect(await response.json()).toEqual({
      data: { me: { email: other.email, name: other.name } },
    });
  } finally {
    await api.dispose();
  }

  // Shown once: gone after "I have copied it" and after a reload.
  await page.getByRole('button', { name: 'I have copied it' }).click();
  await expect(page.getByLabel('Your new token')).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole('listitem').filter({ hasText: name })).toHaveCount(1);
  await expect(page.getByText(token)).toHaveCount(0);
});
