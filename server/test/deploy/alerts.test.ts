/**
 * The alert rules (deploy/prometheus/alerts.yml) checked and unit-tested with Debian's promtool:
 * every rule fires on its scenario, with the summary the person on call reads, and stays quiet
 * on the healthy series beside it (deploy/prometheus/alerts.test.yml).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/config/paths.js';

const run = promisify(execFile);
const PROMTOOL = '/usr/bin/promtool';
const rulesDir = path.join(projectRoot, 'deploy/prometheus');

async function promtool(args: string[], cwd: string) {
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

describe('alert rules', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'alerts-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('are valid rules, each with a summary and a description', async () => {
    const checked = await promtool(['check', 'rules', 'alerts.yml'], rulesDir);
    expect(checked.output).toContain('SUCCESS');
    expect(checked.code).toBe(0);
    const text = await readFile(path.join(rulesDir, 'alerts.yml'), 'utf8');
    const alerts = text.split(/\n\s+- alert: /).slice(1);
    expect(alerts.length).toBeGreaterThanOrEqual(12);
    for (const alert of alerts) {
      expect(alert, alert.split('\n')[0]).toMatch(/\n\s+summary: /);
      expect(alert, alert.split('\n')[0]).toMatch(/\n\s+description: /);
    }
  });

  it('fire on their scenarios and stay quiet otherwise (promtool test rules)', async () => {
    const tested = await promtool(['test', 'rules', 'alerts.test.yml'], rulesDir);
    expect(tested.output).toContain('SUCCESS');
    expect(tested.code).toBe(0);
    // every rule has a scenario in which it fires
    const rules = [
      ...(await readFile(path.join(rulesDir, 'alerts.yml'), 'utf8')).matchAll(/- alert: (\w+)/g),
    ].map((m) => m[1]);
    const tests = await readFile(path.join(rulesDir, 'alerts.test.yml'), 'utf8');
    for (const rule of rules) {
      expect(tests, rule).toMatch(
        new RegExp(`alertname: ${rule}\\n\\s+exp_alerts:\\n\\s+- exp_labels`),
      );
    }
  });

  it('the rule tests fail when a rule is weakened', async () => {
    // The staging-space rule at 1% instead of 10%: its scenario (5% free) no longer fires.
    const rules = await readFile(path.join(rulesDir, 'alerts.yml'), 'utf8');
    const weakened = rules.replace(
      '/ backups_filesystem_size_bytes{filesystem="customers"} < 0.10',
      '/ backups_filesystem_size_bytes{filesystem="customers"} < 0.01',
    );
    expect(weakened).not.toBe(rules);
    await writeFile(path.join(scratch, 'alerts.yml'), weakened);
    await copyFile(path.join(rulesDir, 'alerts.test.yml'), path.join(scratch, 'alerts.test.yml'));
    const tested = await promtool(['test', 'rules', 'alerts.test.yml'], scratch);
    expect(tested.code).not.toBe(0);
    expect(tested.output).toContain('alertname: BackupsStagingDiskLow');
  });
});
