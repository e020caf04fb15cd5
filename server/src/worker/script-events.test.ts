import { describe, expect, it } from 'vitest';
import { parseScriptEvent } from './script-events.js';

describe('script events', () => {
  it('a progress line without an estimate (restic at 0 %) is still progress', () => {
    expect(
      parseScriptEvent('{"type":"progress","done":0,"total":100,"eta":null,"fraction":0}'),
    ).toEqual({
      type: 'progress',
      done: 0,
      total: 100,
      eta: null,
      fraction: 0,
    });
  });

  it('anything that is not a known event is ignored', () => {
    expect(parseScriptEvent('restic: some log line')).toBeNull();
    expect(
      parseScriptEvent('{"type":"snapshot","kind":"result","id":"not-hex","time":"x"}'),
    ).toBeNull();
    expect(parseScriptEvent('{"type":"phase","phase":"rm -rf /"}')).toBeNull();
  });
});
