import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { projectRoot } from './paths.js';

/**
 * Every setting of the api, the worker and the CLI, read once from environment variables
 * (and from the env file named by BACKUPS_ENV_FILE, default `<project>/data/backups.env`,
 * for variables not already set). Nothing else in the code base reads process.env.
 * The scripts read the same variables (see deploy/backups.env.example).
 */

const duration = z.coerce.number().int().positive();
const port = z.coerce.number().int().min(1).max(65535);
const repositoryMode = z.enum(['full', 'append-only']);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

function schemaFor(dataDir: string) {
  return z.object({
    BACKUPS_DATA_DIR: z.string().min(1).default(dataDir),
    BACKUPS_CUSTOMERS_ROOT: z.string().min(1).default(path.join(dataDir, 'customers')),
    BACKUPS_CUSTOMER_DB_DEFAULTS_FILE: z
      .string()
      .min(1)
      .default(path.join(dataDir, 'secrets/customer-db.cnf')),
    // Read here only to know whether repositories are per customer ("{customer}" in the
    // location): the catalog sync then lists each customer's repository. Never opened here.
    BACKUPS_MANUAL_REPOSITORY: z.string().default(path.join(dataDir, 'repos/manual')),
    BACKUPS_DAILY_REPOSITORY: z.string().default(path.join(dataDir, 'repos/daily')),
    BACKUPS_SAFETY_REPOSITORY: z.string().default(''),
    // Beside each location, its mode (DESIGN.md section 13): "append-only" when this process's
    // credentials can only add (rest-server --append-only). The worker then never forgets or
    // prunes; the maintainer, holding the full-rights credentials, does. The scripts read the
    // same variables (scripts/lib/restic.sh resolve_repository).
    BACKUPS_MANUAL_REPOSITORY_MODE: repositoryMode.default('full'),
    BACKUPS_DAILY_REPOSITORY_MODE: repositoryMode.default('full'),
    /** Default: the manual repository's mode. */
    BACKUPS_SAFETY_REPOSITORY_MODE: repositoryMode.optional(),
    /** An ssh client config for sftp: locations (host key pinned there); default: ssh's own. */
    BACKUPS_SSH_CONFIG: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]+$/, 'an absolute path')
      .optional(),
    /** restic --limit-upload / --limit-download, KiB/s; 0: no limit. */
    BACKUPS_RESTIC_LIMIT_UPLOAD: z.coerce.number().int().min(0).default(0),
    BACKUPS_RESTIC_LIMIT_DOWNLOAD: z.coerce.number().int().min(0).default(0),
    /** A repository whose every request failed this long stops the job (REPOSITORY_UNAVAILABLE). */
    BACKUPS_REPOSITORY_STALL_SECONDS: duration.default(60),
    /** [maintainer] When it applies every customer's retention (local time, after the dailies). */
    BACKUPS_MAINTAINER_AT: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 24-hour')
      .default('06:00'),
    /** [maintainer] The weekday it prunes and checks the repositories (0 Sunday .. 6 Saturday). */
    BACKUPS_MAINTAINER_PRUNE_DAY: z.coerce.number().int().min(0).max(6).default(0),
    BACKUPS_NODE: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'a host name: lowercase letters, digits, dots, dashes')
      .default('local'),
    BACKUPS_DB_HOST: z.string().min(1).default('127.0.0.1'),
    BACKUPS_DB_PORT: port.default(3306),
    BACKUPS_DB_USER: z.string().min(1).default('root'),
    BACKUPS_DB_PASSWORD: z.string().default(''),
    BACKUPS_DB_NAME: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,64}$/, 'letters, digits and _ only')
      // The scripts' database account holds `customer\_%` (deploy/README.md): a name there
      // would put jobs, tokens and sessions within reach of the account that restores run as.
      .refine((name) => !name.toLowerCase().startsWith('customer_'), {
        message: "must not start with customer_ (the customer databases' namespace)",
      })
      .default('backups'),
    BACKUPS_REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379/0'),
    BACKUPS_REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,40}$/)
      .default('backups'),
    BACKUPS_API_HOST: z.string().min(1).default('127.0.0.1'),
    BACKUPS_API_PORT: port.default(4000),
    /** api processes behind the one port (node:cluster); 1: the api runs in this process. */
    BACKUPS_API_PROCESSES: z.coerce.number().int().min(1).max(16).default(1),
    BACKUPS_WORKER_HOST: z.string().min(1).default('127.0.0.1'),
    BACKUPS_WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(4001),
    BACKUPS_SHUTDOWN_GRACE_SECONDS: duration.default(300),
    BACKUPS_PUBLIC_URL: z.url().default('http://127.0.0.1:4000'),
    BACKUPS_WEB_DIR: z.string().default(path.join(projectRoot, 'web/dist')),
    BACKUPS_SESSION_DAYS: duration.default(14),
    /** Take the client address from X-Forwarded-For (set when the api sits behind nginx). */
    BACKUPS_TRUST_PROXY: bool.default(false),
    BACKUPS_API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(100_000),
    /** Open WebSockets per client address, per api process (the next upgrade is answered 429). */
    BACKUPS_API_MAX_SOCKETS_PER_ADDRESS: z.coerce.number().int().min(1).default(50),
    /** Live subscriptions per session or API token, per api process. */
    BACKUPS_API_MAX_SUBSCRIPTIONS_PER_VIEWER: z.coerce.number().int().min(1).default(100),
    BACKUPS_SIGNIN_LIMIT_PER_EMAIL: duration.default(5),
    BACKUPS_SIGNIN_LIMIT_PER_IP: duration.default(20),
    BACKUPS_JOB_LIMIT_PER_CUSTOMER: duration.default(10),
    /** The window of the three limits above. */
    BACKUPS_RATE_WINDOW_SECONDS: duration.default(60),
    BACKUPS_SCRIPTS_DIR: z.string().min(1).default(path.join(projectRoot, 'scripts')),
    BACKUPS_SCRIPT_PREFIX: z.string().default(''),
    BACKUPS_BACKUP_TIMEOUT_SECONDS: duration.default(600),
    BACKUPS_RESTORE_TIMEOUT_SECONDS: duration.default(1200),
    BACKUPS_VERIFY_TIMEOUT_SECONDS: duration.default(3600),
    /** A drill stopped for the customer's own backup or restore runs again this much later. */
    BACKUPS_VERIFY_RETRY_SECONDS: duration.default(600),
    /** The weekly repository check reads all data once in this many weeks. */
    BACKUPS_CHECK_WEEKS: z.coerce.number().int().min(1).max(52).default(4),
    BACKUPS_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(2),
    BACKUPS_HEARTBEAT_SECONDS: duration.default(5),
    BACKUPS_STALE_AFTER_SECONDS: duration.default(60),
    BACKUPS_DAILY_AT: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 24-hour')
      .default('02:00'),
    BACKUPS_DAILY_ENABLED: bool.default(true),
    BACKUPS_CATALOG_SYNC_MINUTES: duration.default(60),
    BACKUPS_INDEX_KEEP_DAYS: z.coerce.number().int().min(1).max(3650).default(7),
    BACKUPS_INDEX_NEW_BACKUPS: bool.default(true),
    BACKUPS_INDEX_TIMEOUT_SECONDS: duration.default(1800),
    // --- webhooks (DESIGN.md §14) ---
    /** The AES-256-GCM key of webhook secrets: 64 hex characters (or in the file below). */
    BACKUPS_WEBHOOK_KEY: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, '64 hex characters (32 bytes)')
      .optional(),
    BACKUPS_WEBHOOK_KEY_FILE: z.string().default(path.join(dataDir, 'secrets/webhook.key')),
    /** Deliver to http:// URLs too (never in production: the payload and signature travel bare). */
    BACKUPS_WEBHOOK_ALLOW_HTTP: bool.default(false),
    /** Address ranges (CIDR, comma-separated) a webhook may reach although the deny list has them. */
    BACKUPS_WEBHOOK_ALLOW_ADDRESSES: z.string().default(''),
    /** Seconds before each retry, comma-separated: one attempt more than there are numbers. */
    BACKUPS_WEBHOOK_RETRY_SECONDS: z
      .string()
      .regex(/^\d+(\.\d+)?(,\d+(\.\d+)?)*$/, 'seconds, comma-separated')
      .default('5,30,120,600,1800,3600,7200,14400,28800,43200'),
    BACKUPS_WEBHOOK_TIMEOUT_SECONDS: z.coerce.number().positive().max(60).default(10),
    BACKUPS_WEBHOOK_SWEEP_SECONDS: z.coerce.number().positive().default(30),
    BACKUPS_WEBHOOK_LIMIT_PER_CUSTOMER: z.coerce.number().int().min(1).max(1000).default(20),
    // --- e-mail notifications (DESIGN.md §14) ---
    /** The SMTP server the worker sends through, e.g. smtps://user:pass@mail.example:465; unset: no e-mail. */
    BACKUPS_SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
    BACKUPS_MAIL_FROM: z.string().min(3).default('Customer backups <backups@localhost>'),
    /** Seconds before each retry of an e-mail the server did not take. */
    BACKUPS_MAIL_RETRY_SECONDS: z
      .string()
      .regex(/^\d+(\.\d+)?(,\d+(\.\d+)?)*$/, 'seconds, comma-separated')
      .default('60,300,900,3600,7200,14400'),
    /** How often the worker sends what is due. */
    BACKUPS_MAIL_SWEEP_SECONDS: z.coerce.number().positive().default(10),
    // --- single sign-on (OpenID Connect, DESIGN.md §14); unset issuer: password sign-in only ---
    BACKUPS_OIDC_ISSUER: z.url().optional(),
    BACKUPS_OIDC_CLIENT_ID: z.string().default(''),
    BACKUPS_OIDC_CLIENT_SECRET: z.string().default(''),
    /** What the sign-in button says: "Sign in with <name>". */
    BACKUPS_OIDC_NAME: z.string().default('your hosting dashboard'),
    /**
     * The id token claim naming the customer's hosting account: the number their site is kept
     * under (customer-<N>, database customer_<N>). A customer not known here is created for
     * that site on the node BACKUPS_OIDC_NODE_CLAIM names.
     */
    BACKUPS_OIDC_ACCOUNT_CLAIM: z.string().min(1).default('backups_account'),
    /** The id token claim naming the node hosting a customer not yet known here. */
    BACKUPS_OIDC_NODE_CLAIM: z.string().min(1).default('backups_node'),
    /** The id token claim naming a new customer's site layout (wordpress, volumes/files). */
    BACKUPS_OIDC_LAYOUT_CLAIM: z.string().min(1).default('backups_site_layout'),
    /** Talk to an http:// provider (tests on loopback only). */
    BACKUPS_OIDC_ALLOW_HTTP: bool.default(false),
    // Downloads (DESIGN.md §11): built by the worker into its node's folder (never a site's),
    // served by the worker on its own port behind nginx at /downloads/<node>/<token>.
    BACKUPS_DOWNLOAD_DIR: z.string().min(1).default(path.join(dataDir, 'downloads')),
    BACKUPS_DOWNLOAD_HOST: z.string().min(1).default('127.0.0.1'),
    BACKUPS_DOWNLOAD_PORT: z.coerce.number().int().min(0).max(65535).default(4002),
    /**
     * nginx on this node sends the archive itself: after the token's check the worker answers
     * `X-Accel-Redirect: <prefix><file>`, and nginx's `internal` location of that prefix (an
     * alias of BACKUPS_DOWNLOAD_DIR) serves the file with sendfile and Range. Only where that
     * nginx reads this node's folder (BACKUPS_DOWNLOAD_GROUP for the scripts); unset, the
     * worker sends the bytes (a node behind a remote nginx).
     */
    BACKUPS_DOWNLOAD_ACCEL_PREFIX: z.preprocess(
      (v) => (v === '' ? undefined : v),
      z
        .string()
        .regex(/^\/[A-Za-z0-9._/-]*\/$/, 'a path that starts and ends with /')
        .optional(),
    ),
    /** Where links point (nginx in front of every node's worker); default BACKUPS_PUBLIC_URL. */
    BACKUPS_DOWNLOAD_PUBLIC_URL: z.url().optional(),
    /** The api's key for links' tokens (32 random bytes, made on first use when missing). */
    BACKUPS_DOWNLOAD_KEY_FILE: z
      .string()
      .min(1)
      .default(path.join(dataDir, 'secrets/download-link.key')),
    BACKUPS_DOWNLOAD_HOURS: duration.default(24),
    /** Archives a customer may have built or ready at once. */
    BACKUPS_DOWNLOAD_MAX_LIVE: z.coerce.number().int().min(1).default(3),
    /** Bytes of archives a customer may have built in any 24 hours. */
    BACKUPS_DOWNLOAD_MAX_BYTES_PER_DAY: z.coerce
      .number()
      .int()
      .min(1)
      .default(50 * 1024 ** 3),
    BACKUPS_DOWNLOAD_TIMEOUT_SECONDS: duration.default(3600),
    /** How often the worker deletes expired and revoked archives. */
    BACKUPS_DOWNLOAD_SWEEP_SECONDS: duration.default(300),
    BACKUPS_LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
  });
}

export type Config = z.infer<ReturnType<typeof schemaFor>>;

/** The mode of the repository that holds a source's snapshots (safety: the manual one's). */
export function repositoryModeOf(
  cfg: Pick<
    Config,
    | 'BACKUPS_MANUAL_REPOSITORY_MODE'
    | 'BACKUPS_DAILY_REPOSITORY_MODE'
    | 'BACKUPS_SAFETY_REPOSITORY_MODE'
  >,
  source: 'manual' | 'daily' | 'safety',
): 'full' | 'append-only' {
  if (source === 'daily') return cfg.BACKUPS_DAILY_REPOSITORY_MODE;
  if (source === 'safety')
    return cfg.BACKUPS_SAFETY_REPOSITORY_MODE ?? cfg.BACKUPS_MANUAL_REPOSITORY_MODE;
  return cfg.BACKUPS_MANUAL_REPOSITORY_MODE;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Validates an environment; lists every bad variable in one error. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const dataDir = env.BACKUPS_DATA_DIR || path.join(projectRoot, 'data');
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith('BACKUPS_') && v !== undefined && v !== ''),
  );
  const result = schemaFor(dataDir).safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    );
  }
  return result.data;
}

let loaded: Config | undefined;

/** The process's configuration, read from its environment on first use. */
export function config(): Config {
  if (!loaded) {
    const envFile = process.env.BACKUPS_ENV_FILE ?? path.join(projectRoot, 'data/backups.env');
    if (existsSync(envFile)) process.loadEnvFile(envFile);
    loaded = parseConfig(process.env);
  }
  return loaded;
}
