import { describe, expect, it } from 'vitest';
import { contentDisposition, parseRange } from './download-server.js';

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
