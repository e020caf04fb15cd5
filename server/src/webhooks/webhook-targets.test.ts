import { describe, expect, it } from 'vitest';
import { addressAllowed, checkUrl, targetPolicy } from './webhook-targets.js';

const strict = targetPolicy({
  BACKUPS_WEBHOOK_ALLOW_HTTP: false,
  BACKUPS_WEBHOOK_ALLOW_ADDRESSES: '',
});

describe('the webhook deny list', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.3.4.5', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'the metadata service (link-local)'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'IPv6 loopback'],
    ['::', 'IPv6 unspecified'],
    ['fe80::1', 'IPv6 link-local'],
    ['fd00::1', 'IPv6 unique local'],
    ['ff02::1', 'IPv6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['64:ff9b::a00:1', 'NAT64 of a private address'],
    ['2002:7f00:1::', '6to4 of loopback'],
    ['not an address', 'garbage'],
  ])('refuses %s (%s)', (address) => {
    expect(addressAllowed(address, strict)).toBe(false);
  });

  it.each(['93.184.216.34', '1.1.1.1', '2606:4700:4700::1111', '::ffff:93.184.216.34'])(
    'allows the public address %s',
    (address) => {
      expect(addressAllowed(address, strict)).toBe(true);
    },
  );

  it('allows only the configured ranges beyond it (a test receiver on loopback)', () => {
    const loopback = targetPolicy({
      BACKUPS_WEBHOOK_ALLOW_HTTP: true,
      BACKUPS_WEBHOOK_ALLOW_ADDRESSES: '127.0.0.0/8, ::1/128',
    });
    expect(addressAllowed('127.0.0.1', loopback)).toBe(true);
    expect(addressAllowed('::ffff:127.0.0.1', loopback)).toBe(true);
    expect(addressAllowed('::1', loopback)).toBe(true);
    expect(addressAllowed('10.0.0.1', loopback)).toBe(false);
    expect(addressAllowed('169.254.169.254', loopback)).toBe(false);
  });

  it('refuses URLs that are not https, too long, carry credentials, or name a denied address', () => {
    expect(() => checkUrl('http://93.184.216.34/', strict)).toThrow(/Only https/);
    expect(() => checkUrl('ftp://93.184.216.34/', strict)).toThrow(/Only https/);
    expect(() => checkUrl(`https://93.184.216.34/${'a'.repeat(2000)}`, strict)).toThrow(/longer/);
    expect(() => checkUrl('https://user:pw@93.184.216.34/', strict)).toThrow(/user name/);
    expect(() => checkUrl('https://[::ffff:7f00:1]/', strict)).toThrow(/not reachable/);
    expect(() => checkUrl('https://2130706433/', strict)).toThrow(/not reachable/);
    expect(() => checkUrl('not a url', strict)).toThrow(/not a URL/);
    expect(checkUrl('https://93.184.216.34/hook', strict).toString()).toBe(
      'https://93.184.216.34/hook',
    );
  });
});
