import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import {
  createBackup,
  manualList,
  rowWithLabel,
  screenshot,
  signIn,
  waitForIdle,
  waitForJobToEnd,
} from '../support/helpers';

test('a customer browses a backup down to a nested file and chooses it for a restore', async ({
  page,
}) => {
  const demo = system().demo;
  await waitForIdle(demo.id);
  const label = `Browse me ${Math.random().toString(36).slice(2, 6)}`;
  const nested = 'wp-content/uploads/2026/03/image-3-4.jpg';
  const onDisk = await stat(path.join(demo.siteDir, 'wordpress', nested));
  expect((await readFile(path.join(demo.siteDir, 'wordpress', nested))).length).toBe(onDisk.size);

  await signIn(page, demo);
  await createBackup(page, 'Files only', label);
  await waitForJobToEnd(page);
  const row = rowWithLabel(manualList(page), label);
  await row.getByRole('link', { name: /^Browse the backup of / }).click();
  await expect(
    page.getByRole('heading', { level: 1, name: /^Browse the backup of / }),
  ).toBeVisible();

  // Read for browsing, with its progress, then the site folder's listing.
  await page.getByRole('button', { name: 'Read the backup' }).click();
  const top = page.getByRole('button', { name: 'Open folder wp-content' });
  await expect(top).toBeVisible({ timeout: 120_000 });

  // Down to the file, one folder at a time (by keyboard for the last one).
  await top.click();
  await page.getByRole('button', { name: 'Open folder wp-content/uploads' }).click();
  await page.getByRole('button', { name: 'Open folder wp-content/uploads/2026' }).click();
  const march = page.getByRole('button', { name: 'Open folder wp-content/uploads/2026/03' });
  await march.focus();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: 'wp-content/uploads/2026/03' })).toBeFocused();
  const crumbs = page.getByRole('navigation', { name: 'Folder path' });
  await expect(crumbs.getByRole('button', { name: '03' })).toHaveAttribute(
    'aria-current',
    'location',
  );
  const fileRow = page.getByRole('row').filter({ hasText: 'image-3-4.jpg' });
  await expect(fileRow).toContainText(`${(onDisk.size / 1024).toFixed(1)} KB`);
  await fileRow.getByRole('checkbox', { name: `Select ${nested}` }).check();
  await screenshot(page, 'browse-nested');

  // Restore selected: the dialog lists exactly the chosen file.
  await page.getByRole('button', { name: 'Restore selected' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('list', { name: 'What will be replaced' })).toHaveText(nested);
  await screenshot(page, 'browse-restore-dialog', false);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
});
