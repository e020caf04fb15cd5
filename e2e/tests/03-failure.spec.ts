import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import {
  collapse,
  contentDir,
  createBackup,
  dbManifest,
  exists,
  expectNotice,
  filesManifest,
  getSite,
  historyList,
  jobRows,
  manualList,
  pollSite,
  restoreRow,
  rowWithLabel,
  screenshot,
  signIn,
  siteEvents,
  sleep,
  waitForIdle,
  waitForJobToEnd,
} from '../support/helpers';

const REASON = 'The backup storage could not be opened.';

test('a failure is shown in plain words and leaves the site unharmed', async ({ page }) => {
  const demo = system().demo;
  const passwordFile = system().manualPasswordFile;
  await waitForIdle(demo.id);
  await signIn(page, demo);

  // A backup to restore from, made while the repository is readable.
  const label = `Good backup ${Math.random().toString(36).slice(2, 6)}`;
  await createBackup(page, 'Database & Files', label);
  await waitForJobToEnd(page);
  await expectNotice(page, 'Backup finished.');

  const files = await filesManifest(contentDir(demo));
  const db = await dbManifest(demo.id);
  const eventsBefore = (await siteEvents(demo)).length;
  const password = await readFile(passwordFile);
  try {
    // The repository can no longer be opened: its password file holds something else.
    await writeFile(passwordFile, 'not-the-repository-password\n');

    const poll = pollSite();
    await restoreRow(page, rowWithLabel(manualList(page), label), 'Full restore');
    await waitForJobToEnd(page);
    await sleep(300);
    const statuses = await poll.stop();

    const alert = page.getByRole('alert').filter({ hasText: 'Restore failed' });
    await expect(alert).toContainText(
      `Restore failed: ${REASON} Your site was left as it was before.`,
    );
    const failed = historyList(page).getByRole('listitem').first();
    await expect(failed).toContainText('Restore');
    await expect(failed).toContainText('Failed');
    await expect(failed).toContainText(REASON);
    // Words for a customer, not restic's output.
    await expect(page.locator('main')).not.toContainText(/restic|Fatal|wrong password|exit code/i);
    await screenshot(page, 'failure-message');
    const [job] = await jobRows(demo.id);
    expect(job).toMatchObject({
      kind: 'restore',
      status: 'failed',
      errorCode: 'REPOSITORY_UNAVAILABLE',
      errorMessage: REASON,
    });

    // The site is unharmed: it kept answering, files and rows unchanged, never stopped, no flag.
    expect(collapse(statuses)).toEqual([200]);
    expect(await filesManifest(contentDir(demo))).toEqual(files);
    expect(await dbManifest(demo.id)).toEqual(db);
    expect(await exists(path.join(demo.siteDir, '.maintenance'))).toBe(false);
    expect((await siteEvents(demo)).length).toBe(eventsBefore);
    expect((await getSite('/')).status).toBe(200);
    await expectNotice(page, 'Restore failed');

    // A backup fails the same way, in words, and is not listed.
    const failing = `Cannot be stored ${Math.random().toString(36).slice(2, 6)}`;
    await createBackup(page, 'Database only', failing);
    await waitForJobToEnd(page);
    await expect(page.getByRole('alert').filter({ hasText: 'Backup failed' })).toContainText(
      `Backup failed: ${REASON}`,
    );
    await expect(rowWithLabel(manualList(page), failing)).toHaveCount(0);
    expect((await jobRows(demo.id))[0]).toMatchObject({ kind: 'backup', status: 'failed' });
  } finally {
    await writeFile(passwordFile, password);
  }

  // With the password file back, the same restore works.
  await expectNotice(page, 'Backup failed');
  await restoreRow(page, rowWithLabel(manualList(page), label), 'Full restore');
  await waitForJobToEnd(page);
  await expectNotice(page, 'Restore finished — your site is back online.');
  expect(await filesManifest(contentDir(demo))).toEqual(files);
  expect(await dbManifest(demo.id)).toEqual(db);
});
