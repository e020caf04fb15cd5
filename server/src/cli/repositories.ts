import type { Command } from 'commander';
import { config } from '../config/config.js';
import { createLogger } from '../infra/logger.js';
import { checkRepositoryData, checkSubset } from '../worker/repository-check.js';
import { operator, scriptRunner, withServices } from './context.js';

export function repositoryCommands(program: Command): void {
  program
    .command('repos:check')
    .description(
      "check the repositories (structure and index); with --read-data also read back and verify this week's share of their data (all of it in BACKUPS_CHECK_WEEKS weeks)",
    )
    .option('--read-data', "read and verify this week's group of data packs, under the lease")
    .option('--subset <K/N>', 'with --read-data: this group instead of the week’s')
    .action(async (opts: { readData?: boolean; subset?: string }) => {
      if (opts.readData) {
        await readData(opts.subset);
        return;
      }
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

async function readData(subsetArg: string | undefined): Promise<void> {
  const cfg = config();
  const subset = subsetArg ?? checkSubset(new Date(), cfg.BACKUPS_CHECK_WEEKS);
  if (!/^[1-9][0-9]{0,3}\/[1-9][0-9]{0,3}$/.test(subset)) {
    throw new Error('--subset is K/N, for example 2/4');
  }
  await withServices(async ({ orm, redis }) => {
    let failed = 0;
    for (const kind of ['manual', 'daily'] as const) {
      process.stderr.write(`reading group ${subset} of the ${kind} repository's data… `);
      const check = await checkRepositoryData(
        {
          redis,
          prefix: cfg.BACKUPS_REDIS_PREFIX,
          scripts: scriptRunner(),
          logger: createLogger('cli', 'silent'),
          em: orm.em.fork(),
          actor: { kind: 'operator', id: operator() },
        },
        kind,
        subset,
      );
      if (check.outcome !== 'ok') failed += 1;
      process.stderr.write(
        check.outcome === 'ok'
          ? `ok (${check.packs} of ${check.totalPacks} packs)\n`
          : `${check.outcome.toUpperCase()} ${check.problem ?? 'another maintenance holds the repository'}\n`,
      );
      console.log(JSON.stringify(check));
    }
    process.exitCode = failed ? 1 : 0;
  });
}
