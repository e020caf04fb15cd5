import type { Command } from 'commander';
import { config } from '../config/config.js';
import { seedDemo } from '../customers/demo.js';
import { withOrm } from './context.js';

export function databaseCommands(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(() =>
      withOrm(async (orm) => {
        const applied = await orm.migrator.up();
        console.log(
          applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'up to date',
        );
      }),
    );

  program
    .command('seed-demo')
    .description('create (or refresh) the demo customer with a real site folder and database')
    .action(() =>
      withOrm(async (orm) => {
        console.log(JSON.stringify(await seedDemo(orm.em, config())));
      }),
    );
}
