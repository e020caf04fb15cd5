// The neutralised dump streams through a fifo into the import (lib/mysql.sh import_neutralised,
// used by customer-restore and customer-verify). An import stopped before it opened the pipe
// (a SIGTERM between its fork and its open) once left the filter blocked on the pipe for good,
// orphaned, holding the script's output and the customer's lock: the worker waited for the
// script's output to end and every later job of the customer waited for the lock.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const LIB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../scripts/lib');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'import-stream-'));
  await writeFile(path.join(dir, 'dump.sql'), `${'INSERT INTO t VALUES (1);\n'.repeat(50_000)}`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs import_neutralised with `importDump` standing in for the import's own step. */
async function stream(importDump: string) {
  const program = `
    set -uo pipefail
    source "$1/common.sh"; source "$1/mysql.sh"
    TMP_DIR="$2"
    # as in every script: an EXIT trap and the signal traps (they change how bash forks)
    trap 'true' EXIT
    install_signal_traps
    ${importDump}
    import_neutralised scratch customer_1 "$2/dump.sql" "$2/import.sql" "$2/definers.tsv"
    echo "rc=$?" >"$2/rc"`;
  // No pipes: a process left behind would hold them open (as it held the script's output).
  const r = await execa('bash', ['-c', program, 'bash', LIB, dir], {
    reject: false,
    timeout: 20_000,
    stdio: 'ignore',
    env: { IMPORT_STREAM_TEST: dir },
  });
  return { timedOut: r.timedOut, stdout: await readFile(path.join(dir, 'rc'), 'utf8') };
}

/** Processes of a run still alive once it has ended (found by the marker in their environment). */
async function leftovers(): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const environ = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
    if (environ.split('\0').includes(`IMPORT_STREAM_TEST=${dir}`)) found.push(Number(pid));
  }
  return found;
}

describe('the dump streamed into the import', () => {
  it('an import that stops before it opens the pipe fails at once, and leaves no filter behind', async () => {
    const started = Date.now();
    const r = await stream('import_dump() { sleep 0.5; return 1; }');
    expect(r.timedOut).toBe(false);
    expect(r.stdout).toContain('rc=1');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await leftovers()).toEqual([]);
  });

  it('an import that reads half the stream and fails: the filter ends too', async () => {
    const r = await stream('import_dump() { head -c 1000 <"$2" >/dev/null; return 1; }');
    expect(r.timedOut).toBe(false);
    expect(r.stdout).toContain('rc=1');
    expect(await leftovers()).toEqual([]);
  });

  it('an import that reads it all succeeds with every line of the dump', async () => {
    const r = await stream('import_dump() { wc -l <"$2" >"$TMP_DIR/lines"; }');
    expect(r.stdout).toContain('rc=0');
    const lines = await execa('cat', [path.join(dir, 'lines')]);
    expect(Number(lines.stdout.trim())).toBe(50_000);
    expect(await leftovers()).toEqual([]);
  });
});
