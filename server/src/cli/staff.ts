import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { type Command, InvalidArgumentError } from 'commander';
import { addStaffAccount } from '../staff/staff-sign-in.js';
import { audit, withOrm } from './context.js';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function staffCommands(program: Command): void {
  program
    .command('staff:add')
    .description(
      'add a support staff account: it signs in at /admin with rights over every customer',
    )
    .requiredOption('--email <email>')
    .requiredOption('--name <name>')
    .requiredOption(
      '--password-file <file>',
      'a file holding the password, at least 12 characters ("-": read it from stdin)',
    )
    .action((opts: { email: string; name: string; passwordFile: string }) =>
      withOrm(async (orm) => {
        if (!EMAIL.test(opts.email.trim())) {
          throw new InvalidArgumentError(`not an email address: ${opts.email}`);
        }
        const read =
          opts.passwordFile === '-' ? text(process.stdin) : readFile(opts.passwordFile, 'utf8');
        const password = (await read).replace(/\r?\n$/, '');
        if (password.length < 12) {
          throw new InvalidArgumentError('a staff password needs 12 characters or more');
        }
        const staff = await addStaffAccount(orm.em, {
          email: opts.email,
          name: opts.name,
          password,
        });
        await audit(orm, 'staff_created', null, `staff:${staff.id}`);
        console.log(JSON.stringify({ id: staff.id, email: staff.email }));
      }),
    );
}
