// Adds up the results of every runner in a folder (vitest JSON, Playwright JSON, checks) and
// prints one line "N passed, N failed"; exits non-zero when anything failed or a runner left no
// results. Skipped tests are listed: a skipped test is a defect here.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
const expected = new Set(['server.vitest.json']);
const files = readdirSync(dir);
for (const name of expected) {
  if (!files.includes(name)) {
    console.error(`no results from ${name}: that runner crashed`);
    failed += 1;
  }
}
for (const name of files) {
  const data = JSON.parse(readFileSync(path.join(dir, name), 'utf8'));
  if (name.endsWith('.vitest.json')) {
    passed += data.numPassedTests;
    failed += data.numFailedTests;
    skipped += data.numPendingTests + (data.numTodoTests ?? 0);
    if (data.numFailedTestSuites > 0 && data.numFailedTests === 0)
      failed += data.numFailedTestSuites;
  } else if (name.endsWith('.playwright.json')) {
    passed += data.stats.expected + data.stats.flaky;
    failed += data.stats.unexpected;
    skipped += data.stats.skipped;
    failed += (data.errors ?? []).length;
  } else if (name.startsWith('check-')) {
    passed += data.passed;
    failed += data.failed;
    if (data.failed) console.error(`check failed: ${name.slice(6, -5)}`);
  }
}
if (skipped) console.error(`${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
