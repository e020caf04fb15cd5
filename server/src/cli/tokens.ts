import type { Command } from 'commander';
import { ApiToken } from '../auth/api-token.entity.js';
import { createAdminToken } from '../auth/api-tokens.js';
import { audit, positiveInt, withOrm } from './context.js';

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
      withOrm(async (orm) => {
        const updated = await orm.em
          .fork()
          .nativeUpdate(ApiToken, { id, revokedAt: null }, { revokedAt: new Date() });
        if (!updated) throw new Error(`no live token ${id}`);
        await audit(orm, 'token_revoked', null, String(id));
        console.log(`revoked token ${id}`);
      }),
    );
}
