// The chaos run's report, beside the bench's: data/chaos/chaos-<mode>-<time>.{json,md} and
// latest-<mode>.{json,md}.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { InvariantResult } from './invariants.js';
import type { Violation } from './main.js';

export interface ChaosReport {
  startedAt: string;
  finishedAt: string;
  mode: 'quick' | 'full';
  seed: number;
  minutes: number;
  customers: number;
  machine: string;
  loadAverage: { start: number; end: number };
  faults: Record<string, { injected: number; survived: number; noTarget: number }>;
  /** kind -> outcome -> count */
  jobs: Record<string, Record<string, number>>;
  requestsRefused?: Record<string, number>;
  maintenance: { count: number; worstMs: number; medianMs: number };
  api: { probes: number; answered: number; unansweredWhileUp: number; downSeconds: number };
  selfExits: { at: number; what: string }[];
  invariants: InvariantResult[];
  violations: Violation[];
}

export function markdown(r: ChaosReport): string {
  const injected = Object.values(r.faults).reduce((n, f) => n + f.injected, 0);
  const survived = Object.values(r.faults).reduce((n, f) => n + f.survived, 0);
  const lines = [
    `# Chaos report (${r.mode})`,
    '',
    `Run ${r.startedAt} – ${r.finishedAt} on ${r.machine}; seed ${r.seed}, ${r.minutes} min of faults, ${r.customers} customers;`,
    `1-minute load average ${r.loadAverage.start.toFixed(1)} at the start, ${r.loadAverage.end.toFixed(1)} at the end.`,
    '',
    `**${r.violations.length === 0 ? 'No violation' : `${r.violations.length} violation(s)`}.** ${injected} faults injected, ${survived} survived.`,
    '',
    '## Faults',
    '',
    '| fault | injected | survived | no target at the time |',
    '| --- | ---: | ---: | ---: |',
    ...Object.entries(r.faults).map(
      ([t, f]) => `| ${t} | ${f.injected} | ${f.survived} | ${f.noTarget} |`,
    ),
    '',
    '## Jobs by kind and outcome',
    '',
    '| kind | outcomes |',
    '| --- | --- |',
    ...Object.entries(r.jobs).map(
      ([k, by]) =>
        `| ${k} | ${Object.entries(by)
          .map(([o, n]) => `${n} ${o}`)
          .join(', ')} |`,
    ),
    '',
    `Requests the api refused (or that failed) by kind and reason: ${
      Object.entries(r.requestsRefused ?? {})
        .map(([k, n]) => `${k} ×${n}`)
        .join('; ') || 'none'
    }.`,
    '',
    '## Maintenance and the api',
    '',
    `- sites in maintenance ${r.maintenance.count} times; worst ${(r.maintenance.worstMs / 1000).toFixed(1)} s, median ${(r.maintenance.medianMs / 1000).toFixed(1)} s`,
    `- api probed ${r.api.probes} times (once a second): ${r.api.answered} answered, ${r.api.unansweredWhileUp} unanswered while the api was up, ${r.api.downSeconds} s while it was down or starting`,
    `- processes that ended by themselves: ${r.selfExits.length ? r.selfExits.map((e) => e.what).join('; ') : 'none'}`,
    '',
    '## Invariants',
    '',
    ...r.invariants.map(
      (i) => `- ${i.ok ? 'ok' : '**violated**'}: ${i.name}${i.detail ? ` (${i.detail})` : ''}`,
    ),
    '',
  ];
  if (r.violations.length) {
    lines.push(
      '## Violations',
      '',
      ...r.violations.map((v) => `- ${v.invariant}: ${v.detail}`),
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeChaosReport(dir: string, r: ChaosReport) {
  await mkdir(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = path.join(dir, `chaos-${r.mode}-${stamp}.json`);
  const md = path.join(dir, `chaos-${r.mode}-${stamp}.md`);
  await writeFile(json, `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(md, markdown(r));
  await writeFile(path.join(dir, `latest-${r.mode}.json`), `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(path.join(dir, `latest-${r.mode}.md`), markdown(r));
  return { json, md };
}
