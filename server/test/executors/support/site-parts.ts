// Parts of a customer's site as a partial restore's tests compare them: the content folder's
// entries by path, and single tables.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { filesManifest } from './harness.js';

/** The folder's entries as a map from path to its line of filesManifest. */
export async function entries(dir: string): Promise<Map<string, string>> {
  const lines = await filesManifest(dir);
  // A line ends in six fields (kind, mode, owner, size, time, hash); the path may hold spaces.
  return new Map(lines.map((l) => [l.split(' ').slice(0, -6).join(' '), l]));
}

const under = (p: string, paths: string[]) => paths.some((x) => p === x || p.startsWith(`${x}/`));
/** The map without the entries at or below the given paths. */
export const without = (m: Map<string, string>, ...paths: string[]) =>
  new Map([...m].filter(([p]) => !under(p, paths)));
/** The entries at or below one path. */
export const only = (m: Map<string, string>, x: string) =>
  new Map([...m].filter(([p]) => under(p, [x])));

/** One table as mysqldump writes it: definition, rows, its triggers. */
export async function table(id: number, name: string): Promise<string> {
  const r = await execa('mysqldump', [
    '-uroot',
    '--compact',
    '--skip-dump-date',
    '--hex-blob',
    '--triggers',
    '--skip-extended-insert',
    `customer_${id}`,
    name,
  ]);
  return r.stdout;
}

/** Files for --paths-from (NUL-separated) and --tables-from (lines), in `dir`. */
export function argFiles(dir: string) {
  let n = 0;
  const file = async (data: string | Buffer) => {
    const f = path.join(dir, `arg-${++n}`);
    await writeFile(f, data);
    return f;
  };
  return { file, paths: (paths: string[]) => file(paths.map((p) => `${p}\0`).join('')) };
}
