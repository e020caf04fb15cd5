import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { execa } from 'execa';
import { system } from '../support/env';
import {
  bannerTexts,
  contentDir,
  createBackup,
  filesManifest,
  manualList,
  recordBanner,
  rowWithLabel,
  screenshot,
  signIn,
  waitForIdle,
} from '../support/helpers';

test('a customer downloads the files of a backup and the saved file unpacks to the site, byte for byte', async ({
  page,
}) => {
  const { other } = system();
  await waitForIdle(other.id);
  await signIn(page, other);
  const label = `To take home ${Math.random().toString(36).slice(2, 6)}`;
  await createBackup(page, 'Files only', label);
  const row = rowWithLabel(manualList(page), label);
  await expect(row).toBeVisible();
  await waitForIdle(other.id);
  const site = (await filesManifest(contentDir(other))).slice(1);

  await recordBanner(page, 'download-banner');
  await row.getByRole('button', { name: /^Download the backup of/ }).click();
  await page.getByRole('menuitem', { name: 'Files only' }).click();
  await expect(page.getByText('Your download is ready (see Downloads).')).toBeVisible();
  // The build had a banner of its own (a small site's archive is ready within a second).
  expect((await bannerTexts(page)).some((t) => t.includes('Preparing your download'))).toBe(true);

  const downloads = page.getByRole('list', { name: 'Your downloads' });
  const link = downloads.getByRole('link', { name: /^Download customer_\d+-.*-files\.zip$/ });
  await expect(link).toBeVisible();
  const listed = await downloads.getByRole('listitem').first().textContent();
  await screenshot(page, 'downloads');

  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  expect(download.suggestedFilename()).toMatch(
    new RegExp(`^customer_${other.id}-\\d{4}-\\d{2}-\\d{2}-files\\.zip$`),
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'e2e-download-'));
  try {
    const saved = path.join(dir, download.suggestedFilename());
    await download.saveAs(saved);
    // The page's sha256 is the saved file's.
    const { stdout } = await execa('sha256sum', [saved]);
    expect(listed).toContain(stdout.split(' ')[0]);
    await execa('unzip', ['-q', saved, '-d', path.join(dir, 'unpacked')]);
    expect((await filesManifest(path.join(dir, 'unpacked'))).slice(1)).toEqual(site);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a customer chooses a folder and a file in the browser and downloads only those, as TAR.GZ', async ({
  page,
}) => {
  const { other } = system();
  await waitForIdle(other.id);
  await signIn(page, other);
  const label = `Pick some ${Math.random().toString(36).slice(2, 6)}`;
  await createBackup(page, 'Files only', label);
  const row = rowWithLabel(manualList(page), label);
  await expect(row).toBeVisible();
  await waitForIdle(other.id);
  const site = contentDir(other);
  const folder = 'wp-content/uploads/2026/05';
  const file = 'wp-content/uploads/2026/07/image-7-3.jpg';
  const folderBefore = await filesManifest(path.join(site, folder));
  const fileBefore = (await filesManifest(path.join(site, file)))[0]?.split(' ').slice(1);

  await row.getByRole('link', { name: /^Browse the backup of / }).click();
  await page.getByRole('button', { name: 'Read the backup' }).click();
  await page.getByRole('button', { name: 'Open folder wp-content' }).click({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Open folder wp-content/uploads' }).click();
  await page.getByRole('button', { name: 'Open folder wp-content/uploads/2026' }).click();
  await page.getByRole('checkbox', { name: `Select ${folder}` }).check();
  await page.getByRole('button', { name: 'Open folder wp-content/uploads/2026/07' }).click();
  await page.getByRole('checkbox', { name: `Select ${file}` }).check();
  await expect(page.getByRole('region', { name: 'Your selection' })).toContainText(
    '2 files or folders',
  );
  await page
    .getByRole('group', { name: 'Archive format' })
    .getByRole('radio', { name: 'TAR.GZ' })
    .check();
  await recordBanner(page, 'download-banner');
  await page.getByRole('button', { name: 'Download selected' }).click();

  const ready = page.getByRole('list', { name: 'Your download of the selection' });
  const link = ready.getByRole('link', { name: /^Download customer_\d+-.*\.tar\.gz$/ });
  await expect(link).toBeVisible({ timeout: 120_000 });
  await expect(ready).toContainText('2 chosen files or folders');
  expect((await bannerTexts(page)).some((t) => t.includes('Preparing your download'))).toBe(true);
  const listed = await ready.getByRole('listitem').first().textContent();
  await screenshot(page, 'download-selected');

  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'e2e-download-'));
  try {
    const saved = path.join(dir, download.suggestedFilename());
    await download.saveAs(saved);
    const { stdout } = await execa('sha256sum', [saved]);
    expect(listed).toContain(stdout.split(' ')[0]);
    const unpacked = path.join(dir, 'unpacked');
    await execa('mkdir', [unpacked]);
    await execa('tar', ['-xzf', saved, '-C', unpacked]);
    // Only what was chosen, at its place relative to the site, byte for byte and mode for mode.
    expect(await readdir(unpacked)).toEqual(['wp-content']);
    expect(await readdir(path.join(unpacked, 'wp-content'))).toEqual(['uploads']);
    expect(await readdir(path.join(unpacked, 'wp-content/uploads/2026'))).toEqual(['05', '07']);
    expect(await readdir(path.join(unpacked, 'wp-content/uploads/2026/07'))).toEqual([
      'image-7-3.jpg',
    ]);
    expect(await filesManifest(path.join(unpacked, folder))).toEqual(folderBefore);
    expect((await filesManifest(path.join(unpacked, file)))[0]?.split(' ').slice(1)).toEqual(
      fileBefore,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
