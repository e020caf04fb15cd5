import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import {
  banner,
  contentDir,
  createBackup,
  dbManifest,
  expectNotice,
  filesManifest,
  jobRows,
  manualList,
  rowWithLabel,
  screenshot,
  signIn,
  sql,
  undoList,
  waitForIdle,
  waitForJobToEnd,
} from '../support/helpers';

test('a customer browses a backup down to a nested file, restores it alone, and it is back on the site', async ({
  page,
}) => {
  const demo = system().demo;
  await waitForIdle(demo.id);
  const site = contentDir(demo);
  const label = `Browse me ${Math.random().toString(36).slice(2, 6)}`;
  const nested = 'wp-content/uploads/2026/03/image-3-4.jpg';
  const sibling = 'wp-content/uploads/2026/03/image-3-5.jpg';
  const onDisk = await stat(path.join(site, nested));
  const backedUp = await readFile(path.join(site, nested));
  expect(backedUp.length).toBe(onDisk.size);

  await signIn(page, demo);
  await createBackup(page, 'Files only', label);
  await waitForJobToEnd(page);
  const row = rowWithLabel(manualList(page), label);
  const undoPointsBefore = await undoList(page).getByRole('listitem').count();
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

  // After the backup the customer's site moves on: the chosen file is overwritten, its
  // neighbour edited, a file added and another one deleted.
  await writeFile(path.join(site, nested), 'broken by a plugin update\n');
  await writeFile(path.join(site, sibling), 'edited after the backup\n');
  await writeFile(path.join(site, 'wp-content/uploads/2026/03/added-after.txt'), 'new\n');
  await rm(path.join(site, 'wp-content/uploads/2026/03/image-3-1.jpg'));
  const beforeRestore = await filesManifest(site);
  const databaseBefore = await dbManifest(demo.id);

  // Restore selected: the dialog lists exactly the chosen file; cancel keeps everything.
  await page.getByRole('button', { name: 'Restore selected' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('list', { name: 'What will be replaced' })).toHaveText(nested);
  await screenshot(page, 'browse-restore-dialog', false);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  expect(await filesManifest(site)).toEqual(beforeRestore);

  // Now for real: typed RESTORE, the job followed on the page until it is done.
  await page.getByRole('button', { name: 'Restore selected' }).click();
  await expect(dialog.getByRole('list', { name: 'What will be replaced' })).toHaveText(nested);
  await dialog.getByLabel('Type RESTORE to confirm').fill('RESTORE');
  await dialog.getByRole('button', { name: 'Restore' }).click();
  await expect(dialog).toBeHidden();
  await expect(banner(page)).toContainText('Restoring your site');
  await waitForJobToEnd(page);
  const [job] = await jobRows(demo.id);
  expect(job?.kind).toBe('restore');
  expect(job?.status, `${job?.errorCode}: ${job?.errorMessage}`).toBe('completed');
  await expectNotice(page, 'Restore finished — your site is back online.');

  // The chosen file's bytes (and mode) are back; everything else is as the customer left it.
  expect(await readFile(path.join(site, nested))).toEqual(backedUp);
  expect((await stat(path.join(site, nested))).mode).toBe(onDisk.mode);
  const nestedLine = (lines: string[]) => lines.filter((l) => l.startsWith(`${nested} `));
  const others = (lines: string[]) => lines.filter((l) => !l.startsWith(`${nested} `));
  const afterRestore = await filesManifest(site);
  expect(others(afterRestore)).toEqual(others(beforeRestore));
  expect(nestedLine(afterRestore)).not.toEqual(nestedLine(beforeRestore));
  expect(await readFile(path.join(site, sibling), 'utf8')).toBe('edited after the backup\n');
  expect(await dbManifest(demo.id)).toBe(databaseBefore);
  // An undo point of what was replaced is in the catalog and offered on the page (the page
  // keeps the promised 3: earlier tests may have filled them, the oldest then gives way).
  const undoPoints = () =>
    sql(
      `SELECT COUNT(*) FROM snapshots WHERE customer_id = ${demo.id} AND source = 'safety' AND created_by_job_id = ${job?.id}`,
      system().dbName,
    );
  await expect.poll(undoPoints, { timeout: 30_000 }).toBe('1');
  await expect(undoList(page).getByRole('listitem')).toHaveCount(Math.min(undoPointsBefore + 1, 3));
  await screenshot(page, 'browse-restored');
});
