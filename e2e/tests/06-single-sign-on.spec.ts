import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import { screenshot, sql } from '../support/helpers';

test('a customer signs in through the hosting dashboard (OpenID) and lands on their backups; sign-out ends the session', async ({
  page,
}) => {
  const { demo, baseUrl, dbName } = system();
  await page.goto(`${baseUrl}/`);
  await page.getByRole('link', { name: 'Sign in with Hosting Dashboard' }).click();
  // The provider's own sign-in form: the login typed is the dashboard account.
  await page.getByPlaceholder('Enter any login').fill('dash-demo');
  await page.getByPlaceholder('and password').fill('anything');
  await page.getByRole('button', { name: 'Sign-in' }).click();

  await expect(page).toHaveURL(`${baseUrl}/`);
  await expect(page.getByRole('heading', { name: 'Backups', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Manual backups' })).toBeVisible();
  await expect(page.getByText(demo.name).first()).toBeVisible();
  await screenshot(page, 'single-sign-on');
  expect(
    await sql(`SELECT customer_id FROM customer_identities WHERE subject = 'dash-demo'`, dbName),
  ).toBe(String(demo.id));

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to your backups' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Sign in to your backups' })).toBeVisible();
});
