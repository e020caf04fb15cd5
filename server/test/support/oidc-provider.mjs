// A real OpenID provider for the tests (oidc-provider, certified), run as its own process on
// 127.0.0.1:<port>: one confidential client (<client-id>, <client-secret>, <redirect-uri>),
// PKCE required, and its development login form, where the login typed is the account's sub.
// The accounts' claims come as JSON in OIDC_ACCOUNTS ({ "<sub>": { "email": ..., ... } }).
//
// An account may say `"tamper": "<how>"`: the provider then answers its token request with an
// id token gone wrong, the way a forger or a misconfigured provider would send one, so the
// tests see what our client does with it: "nonce" (minted for another sign-in), "foreign-key"
// (signed by a key that is not the provider's, under the provider's key id), "expired",
// "audience" (for another client), "issuer" (from another provider). All but "foreign-key"
// are signed with the provider's own key: only the claim is wrong.
import { generateKeyPairSync, sign } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS ?? '{}');
const issuer = `http://127.0.0.1:${port}`;

const KID = 'provider-signing-key';
const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ownKey = rsa();
const foreignKey = rsa();
const ownJwk = { ...ownKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
function signJwt(header, payload, key) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** The id token as the account's `tamper` wants it. */
function tampered(idToken) {
  const [header, payload] = idToken
    .split('.')
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
  const how = accounts[payload.sub]?.tamper;
  if (!how) return idToken;
  const now = Math.floor(Date.now() / 1000);
  const changes = {
    nonce: { nonce: 'a-nonce-of-another-sign-in' },
    'foreign-key': {},
    expired: { iat: now - 7200, exp: now - 3600 },
    audience: { aud: 'another-client' },
    issuer: { iss: 'http://127.0.0.1:1' },
  }[how];
  if (!changes) throw new Error(`unknown tamper ${how}`);
  const key = how === 'foreign-key' ? foreignKey : ownKey;
  return signJwt(header, { ...payload, ...changes }, key);
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [ownJwk] },
  pkce: { required: () => true },
  cookies: { keys: ['oidc-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'backups_node', 'backups_account', 'backups_site_layout'],
  },
  conformIdTokenClaims: false,
  async findAccount(_ctx, sub) {
    const found = accounts[sub];
    if (!found) return undefined;
    const { tamper: _tamper, ...claims } = found;
    return { accountId: sub, claims: async () => ({ sub, ...claims }) };
  },
  // The dashboard's own customers: no consent screen.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token' && typeof ctx.body?.id_token === 'string') {
    ctx.body = { ...ctx.body, id_token: tampered(ctx.body.id_token) };
  }
});
provider.on('server_error', (_ctx, error) => process.stderr.write(`${error.stack}\n`));
const server = provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
