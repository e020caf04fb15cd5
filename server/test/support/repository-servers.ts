/**
 * Real repository servers on loopback for the tests, each a child process of the test on a
 * free port with its own throw-away folder: OpenSSH's sshd (a generated host key, one key-only
 * account that may only speak sftp, the client's known_hosts holding that host key and
 * StrictHostKeyChecking=yes) and restic's rest-server (TLS from a generated CA, bcrypt
 * htpasswd accounts, --private-repos, optionally --append-only). `repositoryHost()` composes
 * them into what an installation has: the node's credentials (full or append-only) and the
 * maintainer's full ones on the same data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { execa } from 'execa';
import { freePort } from './sandbox.js';

export type RepositoryKind = 'local' | 'sftp' | 'rest';
export const REPOSITORY_KINDS: RepositoryKind[] = ['local', 'sftp', 'rest'];

/** Waits until something accepts TCP connections on 127.0.0.1:port (or the child ends). */
async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server ended at start: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`server never listened on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server child that can be stopped (SIGTERM, or SIGKILL: a crash) and started again. */
class ServerProcess {
  private child: ChildProcess | undefined;
  private output = '';
  constructor(
    readonly port: number,
    private readonly command: string,
    private readonly args: string[],
  ) {}

  get log(): string {
    return this.output.slice(-4000);
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(this.command, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    await listening(this.port, child, () => this.output);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const ended = once(child, 'exit');
    child.kill(signal);
    await ended;
  }
}

// --- OpenSSH sftp ------------------------------------------------------------------------------

export interface SftpServer {
  port: number;
  /** The ssh config the scripts get as BACKUPS_SSH_CONFIG (host "backup-sftp"). */
  sshConfig: string;
  knownHosts: string;
  /** The host key line known_hosts holds (to put back after a wrong-key test). */
  hostKeyLine: string;
  /** `sftp:backup-sftp:<absolute path>` */
  location(folder: string): string;
  /** Writes another key for the host into known_hosts (a host that is not the one on record). */
  recordWrongHostKey(): Promise<void>;
  recordRightHostKey(): Promise<void>;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const SSH_ALIAS = 'backup-sftp';

async function keygen(file: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

/**
 * sshd -D (no daemon) on 127.0.0.1:<free port>: its own host key, and one account (the user
 * the tests run as) that logs in with the generated client key only and gets internal-sftp
 * and nothing else.
 */
export async function startSftpServer(dir: string): Promise<SftpServer> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // sshd's privilege separation folder (Debian's package makes it at boot only)
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const hostKey = path.join(dir, 'host_ed25519');
  const hostPub = await keygen(hostKey);
  const clientKey = path.join(dir, 'client_ed25519');
  const clientPub = await keygen(clientKey);
  const authorizedKeys = path.join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, `${clientPub}\n`, { mode: 0o600 });
  const user = (await execa('id', ['-un'])).stdout.trim();
  const sshdConfig = path.join(dir, 'sshd_config');
  await writeFile(
    sshdConfig,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${authorizedKeys}`,
      // The throw-away folder is under /tmp (world-writable), which StrictModes refuses.
      'StrictModes no',
      `AllowUsers ${user}`,
      'PermitRootLogin prohibit-password',
      'AuthenticationMethods publickey',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'PermitTTY no',
      'Subsystem sftp internal-sftp',
      'ForceCommand internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const knownHosts = path.join(dir, 'known_hosts');
  const hostKeyLine = `${SSH_ALIAS} ${hostPub.split(' ').slice(0, 2).join(' ')}`;
  await writeFile(knownHosts, `${hostKeyLine}\n`, { mode: 0o600 });
  const sshConfig = path.join(dir, 'ssh_config');
  await writeFile(
    sshConfig,
    [
      `Host ${SSH_ALIAS}`,
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  HostKeyAlias ${SSH_ALIAS}`,
      `  IdentityFile ${clientKey}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 30',
      '  ServerAliveInterval 2',
      '  ServerAliveCountMax 2',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const server = new ServerProcess(port, '/usr/sbin/sshd', ['-D', '-e', '-f', sshdConfig]);
  await server.start();
  return {
    port,
    sshConfig,
    knownHosts,
    hostKeyLine,
    location: (folder) => `sftp:${SSH_ALIAS}:${folder}`,
    async recordWrongHostKey() {
      const other = await keygen(path.join(dir, `other_${randomBytes(3).toString('hex')}`));
      await writeFile(knownHosts, `${SSH_ALIAS} ${other.split(' ').slice(0, 2).join(' ')}\n`);
    },
    async recordRightHostKey() {
      await writeFile(knownHosts, `${hostKeyLine}\n`);
    },
    start: () => server.start(),
    stop: (signal) => server.stop(signal),
  };
}

// --- restic's rest-server with TLS ---------------------------------------------------------------

export interface CertificateAuthority {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

/** A CA and a server certificate for 127.0.0.1 and localhost that it signed (openssl). */
export async function createCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => path.join(dir, name);
  const ossl = (args: string[]) => execa('openssl', args);
  await ossl([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    f('ca.key'),
  ]);
  await ossl([
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca.key'),
    '-days',
    '2',
    '-subj',
    '/CN=backups test CA',
    '-out',
    f('ca.pem'),
  ]);
  await ossl([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    f('server.key'),
  ]);
  await ossl([
    'req',
    '-new',
    '-key',
    f('server.key'),
    '-subj',
    '/CN=127.0.0.1',
    '-out',
    f('server.csr'),
  ]);
  await writeFile(
    f('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  await ossl([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    f('server.ext'),
    '-out',
    f('server.pem'),
  ]);
  return { caCert: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key') };
}

export interface RestServer {
  port: number;
  /** `rest:https://127.0.0.1:<port>/<path>` (credentials go in RESTIC_REST_*). */
  location(repoPath: string): string;
  /** An https URL on this server (for raw requests). */
  url(repoPath: string): string;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** rest-server on 127.0.0.1:<free port> over TLS, with these accounts (user -> password). */
export async function startRestServer(options: {
  dir: string;
  dataPath: string;
  ca: CertificateAuthority;
  accounts: Record<string, string>;
  appendOnly?: boolean;
  privateRepos?: boolean;
}): Promise<RestServer> {
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  await mkdir(options.dataPath, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const htpasswd = path.join(options.dir, `htpasswd-${port}`);
  const lines = Object.entries(options.accounts).map(
    ([user, password]) => `${user}:${bcrypt.hashSync(password, 8)}`,
  );
  await writeFile(htpasswd, `${lines.join('\n')}\n`, { mode: 0o600 });
  const args = [
    '--listen',
    `127.0.0.1:${port}`,
    '--path',
    options.dataPath,
    '--htpasswd-file',
    htpasswd,
    '--tls',
    '--tls-cert',
    options.ca.serverCert,
    '--tls-key',
    options.ca.serverKey,
  ];
  if (options.appendOnly) args.push('--append-only');
  if (options.privateRepos) args.push('--private-repos');
  const server = new ServerProcess(port, 'restic-rest-server', args);
  await server.start();
  return {
    port,
    location: (repoPath) => `rest:https://127.0.0.1:${port}/${repoPath}`,
    url: (repoPath) => `https://127.0.0.1:${port}/${repoPath}`,
    start: () => server.start(),
    stop: (signal) => server.stop(signal),
  };
}

// --- an installation's repository host -----------------------------------------------------------

/** The scripts' settings that point them at a repository host, for one set of credentials. */
export interface RepositoryAccess {
  /** BACKUPS_* and RESTIC_* for the scripts (locations, modes, ssh config, rest credentials). */
  env: Record<string, string>;
  /** What restic itself needs for one repository (location, password file, credentials). */
  resticEnv(kind: 'manual' | 'daily'): Record<string, string>;
  /** restic's global arguments for this access (the sftp ssh config). */
  resticArgs: string[];
}

export interface RepositoryHost {
  kind: RepositoryKind;
  /** The node's access (append-only when the host was made so). */
  node: RepositoryAccess;
  /** The maintainer's full-rights access to the same repositories. */
  maintainer: RepositoryAccess;
  sftp?: SftpServer;
  rest?: {
    node: RestServer;
    maintainer: RestServer;
    ca: CertificateAuthority;
    nodeUser: string;
    nodePassword: string;
  };
  /** Stops the server(s) the node talks to (SIGKILL: as a crash) and starts them again. */
  stopServer(signal?: NodeJS.Signals): Promise<void>;
  startServer(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * The repositories of a data folder (`dataDir`: password files in secrets/, local ones in
 * repos/) on a repository host of that kind. rest: the node logs in as `node-a` with
 * --private-repos (its repositories are under /node-a/), append-only when asked; the
 * maintainer has a second rest-server on the same data, full rights. sftp: one account; its
 * "append-only" is not offered (an sftp account can always delete), so only full is made.
 */
export async function repositoryHost(
  kind: RepositoryKind,
  dataDir: string,
  options: { appendOnly?: boolean } = {},
): Promise<RepositoryHost> {
  const pass = (k: string) => path.join(dataDir, 'secrets', `${k}-repository.pass`);
  const cache = path.join(dataDir, 'cache/restic');
  const mode = options.appendOnly ? 'append-only' : 'full';
  const hostDir = path.join(dataDir, 'repository-host');
  const common = (
    locations: Record<'manual' | 'daily', string>,
    extra: Record<string, string>,
    resticArgs: string[],
    accessMode: string,
  ): RepositoryAccess => ({
    env: {
      BACKUPS_MANUAL_REPOSITORY: locations.manual,
      BACKUPS_DAILY_REPOSITORY: locations.daily,
      BACKUPS_MANUAL_REPOSITORY_MODE: accessMode,
      BACKUPS_DAILY_REPOSITORY_MODE: accessMode,
      ...extra,
    },
    resticEnv: (k) => ({
      RESTIC_REPOSITORY: locations[k],
      RESTIC_PASSWORD_FILE: pass(k),
      RESTIC_CACHE_DIR: cache,
      ...Object.fromEntries(Object.entries(extra).filter(([key]) => key.startsWith('RESTIC_'))),
    }),
    resticArgs,
  });
  if (kind === 'local') {
    const locations = {
      manual: path.join(dataDir, 'repos/manual'),
      daily: path.join(dataDir, 'repos/daily'),
    };
    const access = common(locations, {}, [], 'full');
    return {
      kind,
      node: access,
      maintainer: access,
      stopServer: async () => undefined,
      startServer: async () => undefined,
      destroy: async () => undefined,
    };
  }
  if (kind === 'sftp') {
    const sftp = await startSftpServer(path.join(hostDir, 'ssh'));
    const store = path.join(hostDir, 'srv');
    await mkdir(store, { recursive: true, mode: 0o700 });
    const locations = {
      manual: sftp.location(path.join(store, 'manual')),
      daily: sftp.location(path.join(store, 'daily')),
    };
    const access = common(
      locations,
      { BACKUPS_SSH_CONFIG: sftp.sshConfig },
      ['-o', `sftp.args=-F ${sftp.sshConfig} -o BatchMode=yes`],
      'full',
    );
    return {
      kind,
      node: access,
      maintainer: access,
      sftp,
      stopServer: (signal) => sftp.stop(signal),
      startServer: () => sftp.start(),
      destroy: () => sftp.stop(),
    };
  }
  const ca = await createCertificateAuthority(path.join(hostDir, 'tls'));
  const dataPath = path.join(hostDir, 'rest-data');
  const nodeUser = 'node-a';
  const nodePassword = randomBytes(12).toString('hex');
  const maintainerPassword = randomBytes(12).toString('hex');
  const nodeServer = await startRestServer({
    dir: hostDir,
    dataPath,
    ca,
    accounts: { [nodeUser]: nodePassword },
    appendOnly: options.appendOnly,
    privateRepos: true,
  });
  const maintainerServer = await startRestServer({
    dir: hostDir,
    dataPath,
    ca,
    accounts: { maintainer: maintainerPassword },
  });
  const locationsOn = (server: RestServer) => ({
    manual: server.location(`${nodeUser}/manual`),
    daily: server.location(`${nodeUser}/daily`),
  });
  return {
    kind,
    node: common(
      locationsOn(nodeServer),
      {
        RESTIC_REST_USERNAME: nodeUser,
        RESTIC_REST_PASSWORD: nodePassword,
        RESTIC_CACERT: ca.caCert,
      },
      [],
      mode,
    ),
    maintainer: common(
      locationsOn(maintainerServer),
      {
        RESTIC_REST_USERNAME: 'maintainer',
        RESTIC_REST_PASSWORD: maintainerPassword,
        RESTIC_CACERT: ca.caCert,
      },
      [],
      'full',
    ),
    rest: { node: nodeServer, maintainer: maintainerServer, ca, nodeUser, nodePassword },
    stopServer: (signal) => nodeServer.stop(signal),
    startServer: () => nodeServer.start(),
    async destroy() {
      await nodeServer.stop();
      await maintainerServer.stop();
    },
  };
}
