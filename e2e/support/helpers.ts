import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type Browser,
  type BrowserContext,
  expect,
  type Locator,
  type Page,
} from '@playwright/test';
import { execa } from 'execa';
import { sql } from '../../server/test/support/sandbox';
import { type E2eCustomer, SCREENSHOTS_DIR, system } from './env';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- databases ------------------------------------------------------------------------------

/** Runs SQL as root and returns the tab-separated rows. */
export { sql };

/** The customer's database, schema and rows, as a deterministic text. */
export async function dbManifest(customerId: number): Promise<string> {
  const r = await execa('mysqldump', [
    '-uroot',
    '--compact',
    '--skip-dump-date',
    '--hex-blob',
    '--skip-extended-insert',
    '--order-by-primary',
    `customer_${customerId}`,
  ]);
  // AUTO_INCREMENT counters are not part of what a customer sees.
  return r.stdout.replace(/ AUTO_INCREMENT=\d+/g, '');
}

export interface JobRow {
  id: number;
  kind: string;
  scope: string;
  status: string;
  phase: string | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** The customer's jobs in the application database, newest first. */
export async function jobRows(customerId: number): Promise<JobRow[]> {
  const out = await sql(
    `SELECT id, kind, scope, status, IFNULL(phase,''), IFNULL(error_code,''), IFNULL(error_message,'')
     FROM backup_jobs WHERE customer_id = ${customerId} ORDER BY id DESC`,
    system().dbName,
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, kind, scope, status, phase, errorCode, errorMessage] = line.split('\t');
      return {
        id: Number(id),
        kind: kind ?? '',
        scope: scope ?? '',
        status: status ?? '',
        phase: phase || null,
        errorCode: errorCode || null,
        errorMessage: errorMessage || null,
      };
    });
}

/** The customer's catalog rows of one repository kind, newest first. */
export async function catalogRows(
  customerId: number,
  source: 'manual' | 'daily' | 'safety',
): Promise<{ id: string; label: string | null }[]> {
  const out = await sql(
    `SELECT snapshot_id, IFNULL(label,'') FROM snapshots WHERE customer_id = ${customerId}
     AND source = '${source}' ORDER BY time DESC`,
    system().dbName,
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, label] = line.split('\t');
      return { id: id ?? '', label: label || null };
    });
}

/** Waits until the customer has no pending or running job in the database. */
export async function waitForIdle(customerId: number, timeoutMs = 120_000): Promise<JobRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await jobRows(customerId);
    if (!rows.some((r) => r.status === 'pending' || r.status === 'running')) return rows;
    if (Date.now() > deadline) throw new Error(`jobs still active: ${JSON.stringify(rows[0])}`);
    await sleep(250);
  }
}

// --- files ----------------------------------------------------------------------------------

/** Every entry below a folder: type, mode, owner, size, content hash (not times). */
export async function filesManifest(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string) {
    const full = path.join(dir, rel);
    const st = await lstat(full);
    const kind = st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'o';
    const hash = st.isFile()
      ? createHash('sha256')
          .update(await readFile(full))
          .digest('hex')
      : '';
    out.push(
      `${rel || '.'} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${kind === 'f' ? st.size : ''} ${hash}`,
    );
    if (st.isDirectory()) {
      for (const entry of (await readdir(full)).sort()) await walk(path.join(rel, entry));
    }
  }
  await walk('');
  return out;
}

export const contentDir = (customer: E2eCustomer) => path.join(customer.siteDir, 'wordpress');

export async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Lines written by the site's start/stop commands: "stop maintenance <ms>", "start ...". */
export async function siteEvents(customer: E2eCustomer): Promise<string[]> {
  const file = path.join(system().siteStateDir, `customer-${customer.id}.events`);
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

// --- the customer's site through nginx -------------------------------------------------------

export interface SiteReply {
  status: number;
  body: string;
  retryAfter: string | null;
}

export async function getSite(urlPath = '/'): Promise<SiteReply> {
  const res = await fetch(`${system().siteUrl}${urlPath}`, {
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

/** Requests the site every few milliseconds until stopped; keeps the sequence of statuses. */
export function pollSite(intervalMs = 40) {
  const statuses: number[] = [];
  let maintenancePage = '';
  let running = true;
  const done = (async () => {
    while (running) {
      try {
        const reply = await getSite('/');
        statuses.push(reply.status);
        if (reply.status === 503 && !maintenancePage) maintenancePage = reply.body;
      } catch {
        statuses.push(0);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    statuses,
    maintenancePage: () => maintenancePage,
    async stop() {
      running = false;
      await done;
      return statuses;
    },
  };
}

/** [200, 200, 503, 503, 200] -> [200, 503, 200] */
export function collapse(statuses: number[]): number[] {
  return statuses.filter((s, i) => i === 0 || statuses[i - 1] !== s);
}

// --- the browser ------------------------------------------------------------------------------

export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  await mkdir(SCREENSHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS_DIR, `${name}.png`), fullPage });
}

export async function signIn(page: Page, customer: E2eCustomer): Promise<void> {
  await page.goto(`${system().baseUrl}/`);
  await expect(page.getByRole('heading', { name: 'Sign in to your backups' })).toBeVisible();
  await page.getByLabel('Email address').fill(customer.email);
  await page.getByLabel('Password').fill(customer.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Backups', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Manual backups' })).toBeVisible();
}

export async function newSignedInPage(
  browser: Browser,
  customer: E2eCustomer,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await signIn(page, customer);
  return { context, page };
}

export const banner = (page: Page): Locator => page.getByRole('status', { name: 'Current job' });

export const manualList = (page: Page): Locator =>
  page.getByRole('region', { name: 'Manual backups' });

export const undoList = (page: Page): Locator => page.getByRole('region', { name: 'Undo points' });

export const historyList = (page: Page): Locator =>
  page.getByRole('region', { name: 'Recent activity' });

/** Marks the document; the mark is gone if the page ever reloads or navigates. */
export async function markDocument(page: Page): Promise<string> {
  const mark = `mark-${Math.random().toString(36).slice(2)}`;
  await page.evaluate((m) => {
    (window as unknown as { __e2eMark?: string }).__e2eMark = m;
  }, mark);
  return mark;
}

export async function documentMark(page: Page): Promise<string | undefined> {
  return page.evaluate(() => (window as unknown as { __e2eMark?: string }).__e2eMark);
}

/**
 * Records the banner's text on every change (a MutationObserver inside the page): the job's
 * banner, or with `download-banner` the banner of a download being built.
 */
export async function recordBanner(page: Page, id = 'job-banner'): Promise<void> {
  await page.evaluate((bannerId) => {
    const w = window as unknown as { __bannerTexts?: string[] };
    w.__bannerTexts = [];
    const texts = w.__bannerTexts;
    const read = () => {
      const el = document.getElementById(bannerId);
      const text = el ? (el.textContent ?? '').replace(/\s+/g, ' ').trim() : '(none)';
      if (texts[texts.length - 1] !== text) texts.push(text);
    };
    read();
    new MutationObserver(read).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  }, id);
}

export async function bannerTexts(page: Page): Promise<string[]> {
  return page.evaluate(
    () => (window as unknown as { __bannerTexts?: string[] }).__bannerTexts ?? [],
  );
}

/** Picks a scope in the backup form, types a label and creates the backup. */
export async function createBackup(
  page: Page,
  scope: 'Database only' | 'Files only' | 'Database & Files',
  label: string,
): Promise<void> {
  await page.getByRole('radio', { name: scope }).check();
  await page.getByLabel('Label').fill(label);
  await page.getByRole('button', { name: 'Create backup' }).click();
}

/** Restore → choice → dialog → type RESTORE → Restore, on one row of a snapshot list. */
export async function restoreRow(
  page: Page,
  row: Locator,
  choice: 'Full restore' | 'Files only' | 'Database only',
  screenshotName?: string,
): Promise<void> {
  await expect(row).toHaveCount(1);
  await row.getByRole('button', { name: /^Restore the (backup|undo point) of / }).click();
  await page.getByRole('menuitem', { name: choice }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  const restore = dialog.getByRole('button', { name: 'Restore' });
  await expect(restore).toBeDisabled();
  await dialog.getByLabel('Type RESTORE to confirm').fill('RESTORE');
  await expect(restore).toBeEnabled();
  // The dialog as the customer sees it (the viewport, not the whole page behind it).
  if (screenshotName) await screenshot(page, screenshotName, false);
  await restore.click();
  await expect(dialog).toBeHidden();
}

/** The row of a snapshot list that shows this label. */
export const rowWithLabel = (list: Locator, label: string): Locator =>
  list.getByRole('listitem').filter({ hasText: `“${label}”` });

/** Waits for the job the page just started: banner shown, then gone. */
export async function waitForJobToEnd(page: Page, timeout = 150_000): Promise<void> {
  await expect(banner(page)).toBeVisible({ timeout: 30_000 });
  await expect(banner(page)).toBeHidden({ timeout });
}

/** Exactly one notice with this text is shown; then every notice is dismissed. */
export async function expectNotice(page: Page, text: string | RegExp): Promise<void> {
  const notices = page.locator('.notices .notice');
  await expect(notices.filter({ hasText: text })).toHaveCount(1);
  await expect(notices.filter({ hasText: text })).toBeVisible();
  for (let i = await notices.count(); i > 0; i--) {
    await notices.first().getByRole('button', { name: 'Dismiss message' }).click();
  }
  await expect(notices).toHaveCount(0);
}
