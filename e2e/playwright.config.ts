import { defineConfig } from '@playwright/test';

/**
 * Browser tests of the whole system: a real api, worker, MariaDB, Redis, restic and nginx,
 * started from scratch by support/global-setup.ts, driven through Debian's Chromium.
 */
export default defineConfig({
  testDir: './tests',
  globalSetup: './support/global-setup.ts',
  // One browser at a time: the machine is shared and restores are CPU-bound.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: true,
  // Backups and restores take 10-20 s each on a 2-core machine; a test makes several.
  timeout: 240_000,
  globalTimeout: 15 * 60_000,
  expect: { timeout: 45_000 },
  outputDir: 'test-results/artifacts',
  reporter: [
    ['list'],
    [
      'json',
      { outputFile: process.env.PLAYWRIGHT_JSON_OUTPUT_NAME ?? 'test-results/results.json' },
    ],
  ],
  use: {
    browserName: 'chromium',
    // The app is served over HTTPS by nginx with a throw-away self-signed certificate.
    ignoreHTTPSErrors: true,
    actionTimeout: 30_000,
    navigationTimeout: 30_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
});
