import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { type Command, InvalidArgumentError } from 'commander';
import { config } from '../config/config.js';
import { createCustomer } from '../customers/customer-service.js';
import { audit, withOrm } from './context.js';

export function customerCommands(program: Command): void {
  program
    .command('customer:add')
    .description('add a customer')
    .requiredOption('--email <email>')
    .requiredOption('--name <name>')
    .requiredOption(
      '--password-file <file>',
      'a file holding the password, at least 10 characters ("-": read it from stdin); never on the command line, where every local user sees it (ps)',
    )
    .option('--host <host>', 'the hosting node serving the site')
    .option(
      '--id <number>',
      "the customer's number on the hosting platform (its site is customer-<number>); default: the next free one",
    )
    .option('--layout <layout>', 'wordpress or volumes/files', 'wordpress')
    .action(
      (opts: {
        email: string;
        name: string;
        passwordFile: string;
        host?: string;
        layout: string;
        id?: string;
      }) =>
        withOrm(async (orm) => {
          if (opts.layout !== 'wordpress' && opts.layout !== 'volumes/files') {
            throw new InvalidArgumentError('--layout must be wordpress or volumes/files');
          }
          if (opts.id !== undefined && !/^[1-9][0-9]{0,9}$/.test(opts.id)) {
            throw new InvalidArgumentError('--id must be a positive number');
          }
          const read =
            opts.passwordFile === '-' ? text(process.stdin) : readFile(opts.passwordFile, 'utf8');
          // One line: the end of line a file or `echo` adds is not part of the password.
          const password = (await read).replace(/\r?\n$/, '');
          const customer = await createCustomer(orm.em, {
            ...(opts.id === undefined ? {} : { id: Number(opts.id) }),
            email: opts.email,
            name: opts.name,
            password,
            host: opts.host ?? config().BACKUPS_NODE,
            siteLayout: opts.layout,
          });
          await audit(orm, 'customer_created', customer.id, String(customer.id));
          console.log(
            JSON.stringify({ id: customer.id, email: customer.email, host: customer.host }),
          );
        }),
    );
}
