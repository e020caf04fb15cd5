import { builder } from '../graphql/builder.js';
import { OIDC_START_PATH } from './oidc.js';

const SingleSignOnRef = builder
  .objectRef<{ name: string; startUrl: string }>('SingleSignOn')
  .implement({
    fields: (t) => ({
      name: t.exposeString('name', { description: 'the provider, for "Sign in with <name>"' }),
      startUrl: t.exposeString('startUrl', { description: 'where the browser goes to start' }),
    }),
  });

builder.queryField('singleSignOn', (t) =>
  t.field({
    type: SingleSignOnRef,
    nullable: true,
    description: "sign-in through the hosting company's dashboard; null when not configured",
    resolve: (_root, _args, ctx) =>
      ctx.services.config.BACKUPS_OIDC_ISSUER
        ? { name: ctx.services.config.BACKUPS_OIDC_NAME, startUrl: OIDC_START_PATH }
        : null,
  }),
);
