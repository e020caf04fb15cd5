import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentDisposition, parseRange, sendRange } from './download-server.js';

describe('parseRange', () => {
  it.each([
    [undefined, null],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=100-', { start: 100, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=-10', { start: 990, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=999-999', { start: 999, end: 999 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=1000-2000', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    // Malformed, reversed or several ranges: the whole file (RFC 9110 lets a server ignore them).
    ['bytes=5-1', null],
    ['bytes=0-1,5-6', null],
    ['items=0-1', null],
    ['bytes=-', null],
    ['bytes=99999999999999999999-', null],
  ])('%s of 1000 bytes: %j', (header, want) => {
    expect(parseRange(header, 1000)).toEqual(want);
  });

  it('any range of an empty file is unsatisfiable', () => {
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=-1', 0)).toBe('unsatisfiable');
  });
});

describe('contentDisposition', () => {
  it('keeps a plain name and makes anything else safe in the ASCII form', () => {
    expect(contentDisposition('customer_5-2026-12-02.zip')).toBe(
      `attachment; filename="customer_5-2026-12-02.zip"; filename*=UTF-8''customer_5-2026-12-02.zip`,
    );
    expect(contentDisposition('a"b\r\nc.zip')).toBe(
      `attachment; filename="a_b__c.zip"; filename*=UTF-8''a%22b%0D%0Ac.zip`,
    );
  });
});

describe('sendRange', () => {
  // Over two of its 4 MiB buffers and a part: every turn of the two and a short last read.
  const bytes = randomBytes(9 * 2 ** 20 + 12345);
  let dir: string;
  let server: Server;
  let port: number;
  const ended: boolean[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'send-range-'));
    await writeFile(path.join(dir, 'archive.zip'), bytes);
    // More than loopback's socket buffers hold, so a client that stops reading stops the send.
    await writeFile(path.join(dir, 'large.zip'), Buffer.alloc(64 * 2 ** 20, 7));
    server = createServer((req, res) => {
      const [name, range] = (req.url ?? '').slice(1).split('/') as [string, string];
      const [start, end] = range.split('-').map(Number) as [number, number];
      void (async () => {
        const handle = await open(path.join(dir, name), 'r');
        try {
          res.writeHead(200, { 'content-length': end - start + 1 });
          ended.push(await sendRange(handle, res, start, end));
        } finally {
          await handle.close();
        }
      })();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const fetchRange = (start: number, end: number) =>
    new Promise<Buffer>((resolve, reject) => {
      get(`http://127.0.0.1:${port}/archive.zip/${start}-${end}`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it.each([
    ['the whole file', 0, bytes.length - 1],
    ['a range across both buffers', 3 * 2 ** 20 + 7, 8 * 2 ** 20 + 3],
    ['one byte', 4 * 2 ** 20, 4 * 2 ** 20],
    ['the tail', bytes.length - 100, bytes.length - 1],
  ])('%s: exactly those bytes', async (_name, start, end) => {
    const got = await fetchRange(start, end);
    expect(got.length).toBe(end - start + 1);
    expect(sha(got)).toBe(sha(bytes.subarray(start, end + 1)));
  });

  it('a client that goes away mid-file ends the send (false), and the next one is served whole', async () => {
    ended.length = 0;
    await new Promise<void>((resolve, reject) => {
      get(`http://127.0.0.1:${port}/large.zip/0-${64 * 2 ** 20 - 1}`, (res) => {
        res.once('data', () => {
          // A paused download, then the tab closed.
          res.pause();
          setTimeout(() => {
            res.destroy();
            resolve();
          }, 300);
        });
      }).on('error', reject);
    });
    await expect.poll(() => ended, { timeout: 5000 }).toEqual([false]);
    expect(sha(await fetchRange(0, bytes.length - 1))).toBe(sha(bytes));
  });
});
