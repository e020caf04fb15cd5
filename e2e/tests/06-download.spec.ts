import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { execa } from 'execa';
import { system } from '../support/env';
import {
  banner,
  contentDir,
  createBackup,
  filesManifest,
  manualList,
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

  await row.getByRole('button', { name: /^Download the backup of/ }).click();
  await page.getByRole('menuitem', { name: 'Files only' }).click();
  await expect(banner(page)).toContainText('Preparing your download');
  await expect(page.getByText('Your download is ready (see Downloads).')).toBeVisible();

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
