import { Command } from 'commander';
import { config } from '../config/config.js';
import { createCustomer } from '../customers/customer-service.js';
import { seedDemo } from '../customers/demo.js';
import { openOrm } from '../db/orm.js';

const program = new Command('backups').description('Customer backups: operator command line');

async function withOrm<T>(fn: (orm: Awaited<ReturnType<typeof openOrm>>) => Promise<T>): Promise<T> {
  const orm = await openOrm(config());
  try {
    return await fn(orm);
  } finally {
    await orm.close(true);
  }
}

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(() =>
    withOrm(async (orm) => {
      const applied = await orm.migrator.up();
      console.log(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'up to date');
    }),
  );

program
  .command('seed-demo')
  .description('create (or refresh) the demo customer with a real site folder and database')
  .action(() =>
    withOrm(async (orm) => {
      const demo = await seedDemo(orm.em, config());
      console.log(JSON.stringify(demo));
    }),
  );

program
  .command('customer:add')
  .description('add a customer')
  .requiredOption('--email <email>')
  .requiredOption('--name <name>')
  .requiredOption('--password <password>', 'at least 10 characters')
  .option('--host <host>', 'the hosting node serving the site', config().BACKUPS_NODE)
  .option('--layout <layout>', 'wordpress or volumes/files', 'wordpress')
  .action((opts: { email: string; name: string; password: string; host: string; layout: string }) =>
    withOrm(async (orm) => {
      if (opts.layout !== 'wordpress' && opts.layout !== 'volumes/files') {
        throw new Error('--layout must be wordpress or volumes/files');
      }
      const customer = await createCustomer(orm.em, { ...opts, siteLayout: opts.layout });
      console.log(JSON.stringify({ id: customer.id, email: customer.email, host: customer.host }));
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
