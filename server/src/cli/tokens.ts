import type { Command } from 'commander';
import { createAdminToken, revokeApiToken } from '../auth/api-tokens.js';
import { config } from '../config/config.js';
import { audit, positiveInt, withOrm, withServices } from './context.js';

export function tokenCommands(program: Command): void {
  program
    .command('token:create-admin')
    .description('create an admin API token (may act for any customer); it is shown once')
    .requiredOption('--name <name>')
    .action((opts: { name: string }) =>
      withOrm(async (orm) => {
        const { token, apiToken } = await createAdminToken(orm.em, opts.name);
        await audit(orm, 'token_created', null, String(apiToken.id));
        console.log(JSON.stringify({ id: apiToken.id, name: apiToken.name, token }));
      }),
    );

  program
    .command('token:revoke')
    .description('revoke an API token (admin or customer)')
    .argument('<id>', 'token id', positiveInt)
    .action((id: number) =>
      withServices(async ({ orm, redis }) => {
        // As the api revokes: the token's live subscriptions end at once, on every api process.
        const revoked = await revokeApiToken(orm.em, id, {
          redis,
          prefix: config().BACKUPS_REDIS_PREFIX,
        });
        if (!revoked) throw new Error(`no live token ${id}`);
        await audit(orm, 'token_revoked', null, String(id));
        console.log(`revoked token ${id}`);
      }),
    );
}
