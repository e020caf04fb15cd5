import type { Command } from 'commander';
import { config } from '../config/config.js';
import { createLogger } from '../infra/logger.js';
import { perCustomerSources, syncCatalog } from '../snapshots/catalog-sync.js';
import { scriptRunner, withOrm } from './context.js';

export function catalogCommands(program: Command): void {
  program
    .command('catalog:resync')
    .description("bring this node's snapshot catalog in step with the repositories")
    .option('--node <node>', 'the hosting node')
    .action((opts: { node?: string }) =>
      withOrm(async (orm) => {
        const report = await syncCatalog({
          orm,
          scripts: scriptRunner(),
          logger: createLogger('cli', 'warn'),
          node: opts.node ?? config().BACKUPS_NODE,
          perCustomer: perCustomerSources(config()),
        });
        console.log(JSON.stringify(report));
      }),
    );
}
