import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import {
  banner,
  bannerTexts,
  createBackup,
  documentMark,
  expectNotice,
  historyList,
  manualList,
  markDocument,
  newSignedInPage,
  recordBanner,
  rowWithLabel,
  sleep,
  waitForIdle,
} from '../support/helpers';

test('two sessions of a customer both follow a job live; another customer sees nothing of it', async ({
  browser,
}) => {
  const { demo, other } = system();
  await waitForIdle(demo.id);
  await waitForIdle(other.id);
  const first = await newSignedInPage(browser, demo);
  const second = await newSignedInPage(browser, demo);
  const stranger = await newSignedInPage(browser, other);
  try {
    const secondMark = await markDocument(second.page);
    const strangerMark = await markDocument(stranger.page);
    await recordBanner(second.page);
    await recordBanner(stranger.page);
    await expect(manualList(stranger.page)).toContainText('No manual backups yet');
    await expect(manualList(stranger.page).getByRole('listitem')).toHaveCount(0);

    const label = `Seen in two windows ${Math.random().toString(36).slice(2, 6)}`;
    await createBackup(first.page, 'Database only', label);
    // Both sessions of the customer show the running job.
    await expect(banner(first.page)).toBeVisible();
    await expect(banner(second.page)).toBeVisible();
    await expect(banner(second.page)).toContainText('Creating a backup');
    await expect(banner(second.page)).toContainText('(Database only)');
    await expect(banner(first.page)).toBeHidden({ timeout: 120_000 });
    await expect(banner(second.page)).toBeHidden({ timeout: 30_000 });
    await expectNotice(first.page, 'Backup finished.');
    await expectNotice(second.page, 'Backup finished.');
    // The second window got the new backup live, without a reload.
    await expect(rowWithLabel(manualList(second.page), label)).toHaveCount(1);
    expect(await documentMark(second.page)).toBe(secondMark);
    const seenBySecond = (await bannerTexts(second.page)).filter((t) => t !== '(none)');
    expect(seenBySecond.length).toBeGreaterThanOrEqual(1);

    // The other customer saw nothing: no banner at any moment, no backups, no activity.
    await sleep(1_000);
    expect(await bannerTexts(stranger.page)).toEqual(['(none)']);
    expect(await documentMark(stranger.page)).toBe(strangerMark);
    await expect(manualList(stranger.page).getByRole('listitem')).toHaveCount(0);
    await expect(historyList(stranger.page)).toContainText('No backups or restores yet.');
    await expect(stranger.page.getByText(label)).toHaveCount(0);
    // Nor after a reload (what the api returns, not only what was pushed).
    await stranger.page.reload();
    await expect(stranger.page.getByRole('heading', { name: 'Manual backups' })).toBeVisible();
    await expect(manualList(stranger.page)).toContainText('No manual backups yet');
    await expect(historyList(stranger.page)).toContainText('No backups or restores yet.');
    await expect(stranger.page.getByText(label)).toHaveCount(0);
    await expect(banner(stranger.page)).toHaveCount(0);
  } finally {
    await first.context.close();
    await second.context.close();
    await stranger.context.close();
  }
});
