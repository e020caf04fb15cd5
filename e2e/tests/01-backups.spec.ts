import { expect, test } from '@playwright/test';
import { system } from '../support/env';
import {
  banner,
  bannerTexts,
  catalogRows,
  createBackup,
  documentMark,
  expectNotice,
  jobRows,
  manualList,
  markDocument,
  recordBanner,
  rowWithLabel,
  screenshot,
  waitForIdle,
} from '../support/helpers';

test('a customer creates backups of each scope, follows them live, and a sixth pushes out the oldest', async ({
  page,
}) => {
  const demo = system().demo;
  await waitForIdle(demo.id);
  const run = Math.random().toString(36).slice(2, 6);
  const labels = [
    `Database only ${run}`,
    `Files only ${run}`,
    `Everything ${run}`,
    `Fourth ${run}`,
    `Fifth ${run}`,
    `Sixth ${run}`,
  ];

  // Sign in.
  await page.goto(`${system().baseUrl}/`);
  await expect(page.getByRole('heading', { name: 'Sign in to your backups' })).toBeVisible();
  await page.getByLabel('Email address').fill(demo.email);
  await page.getByLabel('Password').fill(demo.password);
  await screenshot(page, 'sign-in');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Backups', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Manual backups' })).toBeVisible();
  const mark = await markDocument(page);
  const manual = manualList(page);

  const scopes = [
    ['Database only', 'database', /Saving your database/],
    ['Files only', 'files', /Uploading/],
    ['Database & Files', 'both', /Saving your database/],
  ] as const;
  for (const [index, [scope, dbScope, phase]] of scopes.entries()) {
    const label = labels[index] ?? '';
    await recordBanner(page);
    const jobsBefore = (await jobRows(demo.id)).length;
    await createBackup(page, scope, label);
    await expect(banner(page)).toBeVisible();
    await expect(banner(page)).toContainText('Creating a backup');
    await expect(banner(page)).toContainText(`(${scope})`);
    if (index === 2) {
      // Mid-job: a phase in words and a progress bar.
      await expect(banner(page).getByRole('progressbar', { name: 'Progress' })).toBeVisible();
      await screenshot(page, 'banner-mid-job');
    }
    await expect(banner(page)).toBeHidden({ timeout: 120_000 });
    await expectNotice(page, 'Backup finished.');

    // The banner went through several states, live, from the first phase to done.
    const texts = await bannerTexts(page);
    const shown = texts.filter((t) => t !== '(none)');
    expect(shown.length, texts.join('\n')).toBeGreaterThanOrEqual(2);
    expect(
      shown.some((t) => phase.test(t)),
      texts.join('\n'),
    ).toBe(true);
    expect(texts[texts.length - 1]).toBe('(none)');
    const percents = shown.map((t) => Number(/(\d+) %/.exec(t)?.[1] ?? -1));
    expect(Math.max(...percents)).toBeGreaterThan(Math.min(...percents));
    // No reload, no navigation.
    expect(await documentMark(page)).toBe(mark);

    const jobs = await jobRows(demo.id);
    expect(jobs.length).toBe(jobsBefore + 1);
    expect(jobs[0]).toMatchObject({ kind: 'backup', scope: dbScope, status: 'completed' });
    await expect(rowWithLabel(manual, label)).toHaveCount(1);
    await expect(rowWithLabel(manual, label)).toContainText(scope);
  }
  await screenshot(page, 'backups-page-lists');

  // Two more: the list holds five.
  for (const label of labels.slice(3, 5)) {
    await createBackup(page, 'Database only', label);
    await expect(banner(page)).toBeVisible();
    await expect(banner(page)).toBeHidden({ timeout: 120_000 });
    await expectNotice(page, 'Backup finished.');
  }
  await expect(manual.getByRole('listitem')).toHaveCount(5);
  await expect(page.getByText('a new one replaces the oldest')).toBeVisible();
  // The oldest of them is the first one made by this test when the list was empty before it.
  const listed = await manual.locator('.snapshot-label').allTextContents();
  const oldest = listed[listed.length - 1] ?? '';

  // A sixth pushes out the oldest.
  await createBackup(page, 'Database only', labels[5] ?? '');
  await expect(banner(page)).toBeVisible();
  await expect(banner(page)).toBeHidden({ timeout: 120_000 });
  await expectNotice(page, 'Backup finished.');
  await expect(rowWithLabel(manual, labels[5] ?? '')).toHaveCount(1);
  await expect(manual.getByRole('listitem')).toHaveCount(5);
  await expect(manual.getByText(oldest, { exact: true })).toHaveCount(0);
  // Retention is the backup's housekeeping after COMPLETED (the page lists the 5 newest at once):
  // the catalog follows within seconds.
  await expect
    .poll(async () => (await catalogRows(demo.id, 'manual')).length, { timeout: 60_000 })
    .toBe(5);
  const catalog = await catalogRows(demo.id, 'manual');
  expect(catalog.map((c) => `“${c.label}”`)).not.toContain(oldest);
  expect(catalog[0]?.label).toBe(labels[5]);
  // Newest first on the page, as in the catalog.
  expect(await manual.locator('.snapshot-label').allTextContents()).toEqual(
    catalog.map((c) => `“${c.label}”`),
  );
  expect(await documentMark(page)).toBe(mark);
});
