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

  it('progress of a step running beside others names its phase; the job is done at "completed"', () => {
    expect(
      parseScriptEvent(
        '{"type":"progress","done":5,"total":10,"fraction":0.5,"phase":"DOWNLOADING"}',
      ),
    ).toEqual({ type: 'progress', done: 5, total: 10, fraction: 0.5, phase: 'DOWNLOADING' });
    expect(parseScriptEvent('{"type":"completed"}')).toEqual({ type: 'completed' });
    expect(parseScriptEvent('{"type":"progress","done":1,"phase":"not a phase"}')).toBeNull();
  });

  it('anything that is not a known event is ignored', () => {
    expect(parseScriptEvent('restic: some log line')).toBeNull();
    expect(
      parseScriptEvent('{"type":"snapshot","kind":"result","id":"not-hex","time":"x"}'),
    ).toBeNull();
    expect(parseScriptEvent('{"type":"phase","phase":"rm -rf /"}')).toBeNull();
  });
});
