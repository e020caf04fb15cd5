import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import { getSite, screenshot, signIn } from '../support/helpers';

test('smoke', async ({ page }) => {
  expect((await getSite('/')).status).toBe(200);
  await signIn(page, system().demo);
  await screenshot(page, 'smoke');
});
