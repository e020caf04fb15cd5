import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { type Command, InvalidArgumentError } from 'commander';
import { recordAudit } from '../audit/audit.js';
import { config } from '../config/config.js';
import { CustomerMoveError, moveCustomer } from '../customers/customer-move.js';
import { createCustomer } from '../customers/customer-service.js';
import { knownNodes } from '../ops/node-status.js';
import { audit, operator, positiveInt, withOrm, withServices } from './context.js';

/** restic locations that are a folder of the node itself (not sftp:, rest:, s3:, ...). */
const nodeLocal = (location: string) => location.startsWith('/') || location.startsWith('local:');

/** What the move means for the customer's existing snapshots, per repository. */
function repositoryNotes(to: string): string[] {
  const cfg = config();
  const repositories = [
    ['manual', cfg.BACKUPS_MANUAL_REPOSITORY],
    ['daily', cfg.BACKUPS_DAILY_REPOSITORY],
    ['undo points', cfg.BACKUPS_SAFETY_REPOSITORY || cfg.BACKUPS_MANUAL_REPOSITORY],
  ] as const;
  return repositories.map(([kind, location]) =>
    nodeLocal(location)
      ? `${kind}: ${location} is a folder on each node: its snapshots cannot follow to ${to} (unless that path is the same shared storage there). ${to}'s next catalog sync shows only what its own ${kind} repository holds for the customer; copy the customer's snapshots first (restic copy --tag customer-<id>) to keep them`
      : `${kind}: ${location} is remote storage: where ${to}'s worker uses this same location, the customer's snapshots and catalog rows stay as they are; where ${to} has a repository of its own (one per node), they cannot follow and ${to}'s next catalog sync drops them (restic copy them first)`,
  );
}

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

  program
    .command('customer:move')
    .description(
      "move a customer to another hosting node: their pending jobs move to that node's queues; refused while one of their jobs runs",
    )
    .requiredOption('--customer <id>', 'the customer', positiveInt)
    .requiredOption('--to <node>', 'the node that serves the site from now on (its BACKUPS_NODE)')
    .action((opts: { customer: number; to: string }) =>
      withServices(async ({ orm, redis, jobs }) => {
        const cfg = config();
        try {
          const result = await moveCustomer(
            {
              em: orm.em,
              jobs,
              nodeKnown: async (node) =>
                (await knownNodes(orm.em.fork())).includes(node) ||
                (await redis.exists(`${cfg.BACKUPS_REDIS_PREFIX}:worker:${node}`)) === 1,
            },
            opts.customer,
            opts.to,
          );
          await recordAudit(orm.em, {
            action: 'customer_moved',
            actor: { kind: 'operator', id: operator() },
            customerId: result.customerId,
            targetId: result.to,
            details: { from: result.from, to: result.to, jobs: result.moved.map((j) => j.id) },
          });
          const workerAlive =
            (await redis.exists(`${cfg.BACKUPS_REDIS_PREFIX}:worker:${result.to}`)) === 1;
          console.log(
            [
              `customer ${result.customerId} moved from ${result.from} to ${result.to}`,
              result.moved.length
                ? `pending jobs now queued on ${result.to}: ${result.moved.map((j) => `${j.id} (${j.kind})`).join(', ')}`
                : 'no pending jobs',
              ...(workerAlive
                ? []
                : [`the worker of ${result.to} is not running: the jobs wait until it starts`]),
              ...repositoryNotes(result.to),
            ].join('\n'),
          );
        } catch (error) {
          if (error instanceof CustomerMoveError) throw new Error(error.message);
          throw error;
        }
      }),
    );
}
