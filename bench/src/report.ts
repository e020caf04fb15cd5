// The JSON and Markdown reports under data/bench/.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spread } from './stats.js';

export interface Figure {
  name: string;
  unit: string;
  /** One value per repetition. */
  values: number[];
  target?: string;
  pass?: boolean;
}

export interface Measurement {
  id: number;
  title: string;
  /** What was built and how it was run. */
  setup: string;
  figures: Figure[];
  /** What limits these figures. */
  limits: string;
  notes?: string[];
  error?: string;
}

export interface Report {
  startedAt: string;
  finishedAt: string;
  mode: 'quick' | 'full';
  machine: string;
  /** 1-minute load average at the start and the end (other work on the machine). */
  loadAverage: { start: number; end: number };
  measurements: Measurement[];
}

function fmt(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '–';
  const digits = unit === 'x' ? 2 : Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toFixed(digits);
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.type()} ${os.release()}`;
}

export function markdown(report: Report): string {
  const lines: string[] = [
    `# Benchmark report (${report.mode})`,
    '',
    `Run ${report.startedAt} – ${report.finishedAt} on ${report.machine};`,
    `1-minute load average ${report.loadAverage.start.toFixed(1)} at the start, ${report.loadAverage.end.toFixed(1)} at the end (the machine is shared).`,
    'Every figure is min / median / max over the repetitions (n); each measurement ran side by side',
    'with its baseline in one run, repetitions interleaved.',
    '',
  ];
  for (const m of report.measurements) {
    lines.push(`## ${m.id}. ${m.title}`, '', m.setup, '');
    if (m.error) lines.push(`**Failed:** ${m.error}`, '');
    if (m.figures.length) {
      lines.push(
        '| figure | min | median | max | n | target |',
        '| --- | ---: | ---: | ---: | ---: | --- |',
      );
      for (const f of m.figures) {
        const s = spread(f.values);
        const target = f.target
          ? `${f.target} ${f.pass === undefined ? '' : f.pass ? '**met**' : '**missed**'}`
          : '';
        lines.push(
          `| ${f.name} (${f.unit}) | ${fmt(s.min, f.unit)} | ${fmt(s.median, f.unit)} | ${fmt(s.max, f.unit)} | ${s.n} | ${target.trim()} |`,
        );
      }
      lines.push('');
    }
    for (const note of m.notes ?? []) lines.push(`- ${note}`);
    if (m.notes?.length) lines.push('');
    lines.push(`*What limits it:* ${m.limits}`, '');
  }
  return `${lines.join('\n')}\n`;
}

export async function writeReport(
  dir: string,
  report: Report,
): Promise<{ json: string; md: string }> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const json = path.join(dir, `bench-${report.mode}-${stamp}.json`);
  const md = path.join(dir, `bench-${report.mode}-${stamp}.md`);
  const withSpreads = {
    ...report,
    measurements: report.measurements.map((m) => ({
      ...m,
      figures: m.figures.map((f) => ({ ...f, ...spread(f.values) })),
    })),
  };
  await writeFile(json, `${JSON.stringify(withSpreads, null, 2)}\n`);
  await writeFile(md, markdown(report));
  await writeFile(path.join(dir, `latest-${report.mode}.md`), markdown(report));
  await writeFile(
    path.join(dir, `latest-${report.mode}.json`),
    `${JSON.stringify(withSpreads, null, 2)}\n`,
  );
  return { json, md };
}
