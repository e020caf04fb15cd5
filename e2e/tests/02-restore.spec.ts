import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, type Locator, type Page, test } from '@playwright/test';
import { system } from '../support/env';
import {
  bannerTexts,
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
  recordBanner,
  restoreRow,
  rowWithLabel,
  signIn,
  siteEvents,
  sleep,
  sql,
  undoList,
  waitForIdle,
  waitForJobToEnd,
} from '../support/helpers';

const ORIGINAL_INDEX = '<?php require __DIR__ . "/wp-blog-header.php";\n';
const CHANGED_INDEX = '<?php echo "changed after the backup";\n';

/** Edits, adds and deletes files; changes, adds and drops rows; adds a table. */
async function changeSite(): Promise<void> {
  const demo = system().demo;
  const dir = contentDir(demo);
  await writeFile(path.join(dir, 'index.php'), CHANGED_INDEX);
  await writeFile(path.join(dir, 'wp-content/uploads/2026/01/added-after.txt'), 'new file\n');
  await rm(path.join(dir, 'Grüße über.txt'), { force: true });
  await rm(path.join(dir, 'wp-content/themes/shop-theme'), { recursive: true, force: true });
  await sql(
    `UPDATE wp_options SET option_value = 'Changed Shop' WHERE option_name = 'blogname';
     INSERT INTO wp_posts (post_title, post_content, post_date) VALUES ('Added later', 'x', NOW());
     DELETE FROM shop_orders WHERE id <= 10;
     CREATE TABLE IF NOT EXISTS added_table (id INT PRIMARY KEY, note VARCHAR(50));
     REPLACE INTO added_table VALUES (1, 'after the backup');`,
    `customer_${demo.id}`,
  );
}

const scopeOf = { 'Full restore': 'both', 'Files only': 'files', 'Database only': 'database' };

/** Starts a restore from the page and watches the site through nginx until it ends. */
async function restoreAndWatch(
  page: Page,
  row: Locator,
  choice: 'Full restore' | 'Files only' | 'Database only',
  screenshotName?: string,
): Promise<void> {
  const demo = system().demo;
  const eventsBefore = (await siteEvents(demo)).length;
  await recordBanner(page);
  const poll = pollSite();
  await sleep(300);
  await restoreRow(page, row, choice, screenshotName);
  await waitForJobToEnd(page);
  await sleep(300);
  const statuses = await poll.stop();
  const [job] = await jobRows(demo.id);
  // A failed restore says why (e.g. "This backup does not contain the site's files.").
  expect(job?.status, `${job?.errorCode}: ${job?.errorMessage}`).toBe('completed');
  await expectNotice(page, 'Restore finished — your site is back online.');

  // Up before, maintenance page (503) during the switch-over only, up after.
  expect(collapse(statuses), statuses.join(',')).toEqual([200, 503, 200]);
  expect(poll.maintenancePage()).toContain("We're restoring this site from a backup");
  const texts = await bannerTexts(page);
  expect(
    texts.some((t) => t.includes('Switching your site over (maintenance mode)')),
    texts.join('\n'),
  ).toBe(true);
  // The site was stopped and started once, both while the maintenance flag was there.
  const events = (await siteEvents(demo)).slice(eventsBefore).map((e) => e.split(' ', 2).join(' '));
  expect(events).toEqual(['stop maintenance', 'start maintenance']);
  expect(await exists(path.join(demo.siteDir, '.maintenance'))).toBe(false);
  expect(job).toMatchObject({ kind: 'restore', scope: scopeOf[choice], status: 'completed' });
}

/** Makes a manual backup of everything from the page; returns its label. */
async function backUpEverything(page: Page, what: string): Promise<string> {
  const label = `${what} ${Math.random().toString(36).slice(2, 6)}`;
  await createBackup(page, 'Database & Files', label);
  await waitForJobToEnd(page);
  await expectNotice(page, 'Backup finished.');
  await expect(rowWithLabel(manualList(page), label)).toHaveCount(1);
  return label;
}

test('restores full, files only and database only from the page; the site shows the maintenance page during the swap only', async ({
  page,
}) => {
  const demo = system().demo;
  await waitForIdle(demo.id);
  await signIn(page, demo);

  // The state that gets backed up.
  await writeFile(path.join(contentDir(demo), 'index.php'), ORIGINAL_INDEX);
  const filesBackedUp = await filesManifest(contentDir(demo));
  const dbBackedUp = await dbManifest(demo.id);
  const label = await backUpEverything(page, 'Restore point');
  const row = rowWithLabel(manualList(page), label);
  expect(await getSite('/')).toMatchObject({ status: 200, body: ORIGINAL_INDEX });

  // The customer changes the site afterwards.
  await changeSite();
  const filesChanged = await filesManifest(contentDir(demo));
  const dbChanged = await dbManifest(demo.id);
  expect(filesChanged).not.toEqual(filesBackedUp);
  expect(dbChanged).not.toEqual(dbBackedUp);
  expect(dbChanged).toContain('added_table');
  expect(await getSite('/')).toMatchObject({ status: 200, body: CHANGED_INDEX });

  // Full restore: files and rows exactly as backed up.
  await restoreAndWatch(page, row, 'Full restore', 'restore-dialog');
  expect(await filesManifest(contentDir(demo))).toEqual(filesBackedUp);
  expect(await dbManifest(demo.id)).toEqual(dbBackedUp);
  expect(await getSite('/')).toMatchObject({ status: 200, body: ORIGINAL_INDEX });
  expect(await sql('SHOW TABLES', `customer_${demo.id}`)).not.toContain('added_table');

  // Files only: the files come back, the changed rows stay.
  await changeSite();
  const filesChangedAgain = await filesManifest(contentDir(demo));
  const dbChangedAgain = await dbManifest(demo.id);
  await restoreAndWatch(page, row, 'Files only');
  expect(await filesManifest(contentDir(demo))).toEqual(filesBackedUp);
  expect(await dbManifest(demo.id)).toEqual(dbChangedAgain);
  expect(filesChangedAgain).not.toEqual(filesBackedUp);

  // Database only: now the rows come back too.
  await restoreAndWatch(page, row, 'Database only');
  expect(await filesManifest(contentDir(demo))).toEqual(filesBackedUp);
  expect(await dbManifest(demo.id)).toEqual(dbBackedUp);
  expect(await getSite('/')).toMatchObject({ status: 200, body: ORIGINAL_INDEX });

  // The page shows what happened, newest first.
  const items = historyList(page).getByRole('listitem');
  for (const i of [0, 1, 2]) {
    await expect(items.nth(i)).toContainText('Restore');
    await expect(items.nth(i)).toContainText('Completed');
  }
  await expect(items.nth(0)).toContainText('Database only');
  await expect(items.nth(1)).toContainText('Files only');
  await expect(items.nth(2)).toContainText('Database & Files');
});

test('the undo point of a full restore puts the state from before the restore back', async ({
  page,
}) => {
  const demo = system().demo;
  await waitForIdle(demo.id);
  await signIn(page, demo);
  const label = await backUpEverything(page, 'Before undo');
  const filesBackedUp = await filesManifest(contentDir(demo));
  const dbBackedUp = await dbManifest(demo.id);

  await changeSite();
  const filesChanged = await filesManifest(contentDir(demo));
  const dbChanged = await dbManifest(demo.id);
  await restoreAndWatch(page, rowWithLabel(manualList(page), label), 'Full restore');
  expect(await filesManifest(contentDir(demo))).toEqual(filesBackedUp);
  expect(await dbManifest(demo.id)).toEqual(dbBackedUp);

  // The newest undo point holds the changed site; restoring it is the undo.
  const newestUndo = undoList(page).getByRole('listitem').first();
  await expect(newestUndo).toContainText('Database & Files (undo point)');
  await restoreAndWatch(page, newestUndo, 'Full restore');
  expect(await filesManifest(contentDir(demo))).toEqual(filesChanged);
  expect(await dbManifest(demo.id)).toEqual(dbChanged);
  expect(await getSite('/')).toMatchObject({ status: 200, body: CHANGED_INDEX });
  await expect(historyList(page).getByRole('listitem').first()).toContainText('Undo of a restore');
});
