import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Config } from '../config/config.js';

/** Where webhooks may be sent: https only, and only to public unicast addresses, by default. */
export interface TargetPolicy {
  allowHttp: boolean;
  /** Ranges allowed although they are not public (a test's loopback receiver). */
  allow: [ipaddr.IPv4 | ipaddr.IPv6, number][];
}

export const MAX_URL_LENGTH = 2000;

export function targetPolicy(
  cfg: Pick<Config, 'BACKUPS_WEBHOOK_ALLOW_HTTP' | 'BACKUPS_WEBHOOK_ALLOW_ADDRESSES'>,
): TargetPolicy {
  const allow = cfg.BACKUPS_WEBHOOK_ALLOW_ADDRESSES.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((cidr) => ipaddr.parseCIDR(cidr));
  return { allowHttp: cfg.BACKUPS_WEBHOOK_ALLOW_HTTP, allow };
}

/** A target refused by the policy: the message says why, for the customer. */
export class TargetRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetRefusedError';
  }
}

/**
 * Whether a connection to `address` may be made. The deny list is everything that is not
 * public unicast: loopback, private, link-local (169.254.169.254, the cloud metadata service,
 * among them), carrier-grade NAT, multicast, broadcast, unspecified, reserved and documentation
 * ranges, and their IPv6 equivalents; an IPv4-mapped IPv6 address is judged as its IPv4 one.
 */
export function addressAllowed(address: string, policy: TargetPolicy): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  for (const [range, bits] of policy.allow) {
    if (range.kind() === ip.kind() && ip.match(range, bits)) return true;
  }
  return ip.range() === 'unicast';
}

/** The URL's host without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Checks what can be checked without the network: scheme, length, credentials, an IP host. */
export function checkUrl(raw: string, policy: TargetPolicy): URL {
  if (raw.length > MAX_URL_LENGTH) {
    throw new TargetRefusedError(`The URL is longer than ${MAX_URL_LENGTH} characters.`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetRefusedError('That is not a URL.');
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new TargetRefusedError(
      policy.allowHttp ? 'Only http and https URLs.' : 'Only https URLs are allowed.',
    );
  }
  if (url.username || url.password) {
    throw new TargetRefusedError('The URL must not contain a user name or password.');
  }
  const host = hostOf(url);
  if (net.isIP(host) && !addressAllowed(host, policy)) {
    throw new TargetRefusedError(`The address ${host} is not reachable for webhooks.`);
  }
  return url;
}

/**
 * Resolves the URL's host and checks every address it has (an IP host is checked as it is).
 * Used when a hook is made, so a name that points at the host's network is refused at once;
 * deliveries check again through guardedLookup, since DNS can change in between.
 */
export async function checkTarget(url: URL, policy: TargetPolicy): Promise<void> {
  const host = hostOf(url);
  if (net.isIP(host)) {
    if (!addressAllowed(host, policy)) {
      throw new TargetRefusedError(`The address ${host} is not reachable for webhooks.`);
    }
    return;
  }
  let addresses: dns.LookupAddress[];
  try {
    addresses = await dns.promises.lookup(host, { all: true, verbatim: true });
  } catch {
    throw new TargetRefusedError(`The host ${host} could not be resolved.`);
  }
  const denied = addresses.find((a) => !addressAllowed(a.address, policy));
  if (denied || addresses.length === 0) {
    throw new TargetRefusedError(
      `The host ${host} resolves to ${denied?.address ?? 'nothing'}, which is not reachable for webhooks.`,
    );
  }
}

/**
 * A `lookup` for the socket of one delivery: it resolves, refuses the connection when any
 * address is denied, and hands the socket exactly the addresses it checked, so nothing can
 * re-resolve the name between the check and the connect (DNS rebinding).
 */
export function guardedLookup(policy: TargetPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, verbatim: true, family: options.family }, (error, found) => {
      if (error) return callback(error, '', 0);
      const denied = found.find((a) => !addressAllowed(a.address, policy));
      if (denied || found.length === 0) {
        const refused = new TargetRefusedError(
          `${hostname} resolves to ${denied?.address ?? 'nothing'}, which is not reachable for webhooks`,
        );
        return callback(refused as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return callback(null, found);
      const [first] = found;
      return callback(null, first?.address ?? '', first?.family ?? 4);
    });
  };
}

/** The URL's host, when it is an IP address (the socket then resolves nothing). */
export function literalAddress(url: URL): string | null {
  const host = hostOf(url);
  return net.isIP(host) ? host : null;
}
