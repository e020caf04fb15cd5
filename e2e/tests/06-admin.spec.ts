import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { execa } from 'execa';
import { SERVER_DIR, system } from '../support/env';
import { screenshot, signIn, sql, waitForIdle } from '../support/helpers';

test('a support user finds a customer and starts a backup for them; a customer sees no admin view', async ({
  page,
}) => {
  const { baseUrl, dbName, redisPrefix, dataDir, other } = system();
  await waitForIdle(other.id);
  // A staff account, made by the ops CLI as an operator would.
  const email = `help-${randomBytes(3).toString('hex')}@hosting.example`;
  const password = `staff-${randomBytes(9).toString('base64url')}`;
  const added = await execa(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/main/cli.ts',
      'staff:add',
      '--email',
      email,
      '--name',
      'Help Desk',
      '--password-file',
      '-',
    ],
    {
      cwd: SERVER_DIR,
      input: password,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        BACKUPS_ENV_FILE: path.join(dataDir, 'none.env'),
        BACKUPS_DATA_DIR: dataDir,
        BACKUPS_DB_NAME: dbName,
        BACKUPS_REDIS_PREFIX: redisPrefix,
        BACKUPS_LOG_LEVEL: 'warn',
      },
      extendEnv: false,
    },
  );
  const staffId = (JSON.parse(added.stdout) as { id: number }).id;

  // A customer who opens the admin view gets the staff sign-in, and their password is refused.
  await signIn(page, other);
  await page.goto(`${baseUrl}/#/admin`);
  await expect(page.getByRole('heading', { name: 'Support sign-in' })).toBeVisible();
  await page.getByLabel('Staff email address').fill(other.email);
  await page.getByLabel('Password').fill(other.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText(
    'The email address or the password is wrong.',
  );
  await expect(page.getByRole('heading', { name: 'Support', exact: true })).toHaveCount(0);

  // The support user signs in, sees the node, finds the customer and backs up their site.
  await page.getByLabel('Staff email address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Support', exact: true })).toBeVisible();
  const nodes = page.getByRole('region', { name: 'Nodes' });
  await expect(nodes.getByRole('row', { name: new RegExp(system().node) })).toContainText(
    'running',
  );

  await page.getByLabel('Email, name or customer number').fill('other@');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('button', { name: `${other.name} (${other.email})` }).click();
  await expect(page.getByRole('heading', { name: `${other.name} · ${other.email}` })).toBeVisible();
  await page.getByRole('button', { name: 'Back up now (database and files)' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Backup started' })).toBeVisible();
  await screenshot(page, 'admin-backup-started');

  const [job] = await waitForIdle(other.id);
  expect(job).toMatchObject({ kind: 'backup', scope: 'both', status: 'completed' });
  // The job is the customer's, asked for by the staff member; the audit log says who.
  expect(
    await sql(
      `SELECT requested_by_kind, requested_by_id FROM backup_jobs WHERE id = ${job?.id}`,
      dbName,
    ),
  ).toBe(`admin\tstaff:${staffId}`);
  expect(
    await sql(
      `SELECT actor_kind, actor_id FROM audit_events WHERE action = 'backup_requested' AND customer_id = ${other.id} ORDER BY id DESC LIMIT 1`,
      dbName,
    ),
  ).toBe(`staff\t${staffId}`);
  // The customer's own page shows the backup made for them.
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('button', { name: `${other.name} (${other.email})` }).click();
  await expect(page.getByRole('table', { name: 'Recent jobs' })).toContainText('completed');
});
