import type { Command } from 'commander';
import { scriptRunner } from './context.js';

export function repositoryCommands(program: Command): void {
  program
    .command('repos:check')
    .description('check the repositories (structure and index; reads no data)')
    .action(async () => {
      const scripts = scriptRunner();
      let failed = 0;
      for (const kind of ['manual', 'daily'] as const) {
        process.stderr.write(`checking the ${kind} repository… `);
        let ok = false;
        const result = await scripts.run('backup-repository', [kind, 'check'], {
          onLine: (line) => {
            const parsed = JSON.parse(line) as { type?: string; ok?: boolean };
            if (parsed.type === 'check') ok = parsed.ok === true;
          },
        });
        ok = ok && result.exitCode === 0;
        if (!ok) failed += 1;
        process.stderr.write(
          ok ? 'ok\n' : `FAILED ${result.lastError?.message ?? result.stderrTail.slice(-300)}\n`,
        );
      }
      process.exitCode = failed ? 1 : 0;
    });
}
