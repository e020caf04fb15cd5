import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');
const STORE = path.join(SRC, 'jobs/job-store.ts');

/** Ways of writing a backup_jobs row: the ORM's writes of the entity, or SQL on the table. */
const WRITES = [
  /\bnative(Update|Delete|Insert)\s*\(\s*BackupJob\b/,
  /\.(create|upsert|upsertMany|insert|insertMany)\s*\(\s*BackupJob\b/,
  /\b(update|insert\s+(ignore\s+)?into|delete\s+from|replace\s+into)\s+`?backup_jobs\b/i,
];

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(full)));
    else if (/\.ts$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) out.push(full);
  }
  return out;
}

describe('one job store', () => {
  it('no file but jobs/job-store.ts writes backup_jobs rows', async () => {
    const offenders: string[] = [];
    for (const file of await sources(SRC)) {
      if (file === STORE) continue;
      const text = await readFile(file, 'utf8');
      for (const pattern of WRITES) {
        const match = pattern.exec(text);
        if (match) offenders.push(`${path.relative(SRC, file)}: ${match[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('the rule sees the writes it is there to forbid', async () => {
    const store = await readFile(STORE, 'utf8');
    expect(WRITES.some((p) => p.test(store))).toBe(true);
    expect(WRITES[0]?.test('em.nativeUpdate(BackupJob, { id }, { status })')).toBe(true);
    expect(WRITES[2]?.test('UPDATE backup_jobs SET status = ?')).toBe(true);
  });

  it('jobs are created in one place: JobStore.create', async () => {
    const creators: string[] = [];
    for (const file of await sources(SRC)) {
      const text = await readFile(file, 'utf8');
      if (/\bem\.create\(\s*BackupJob|\bcreate\(BackupJob/.test(text)) {
        creators.push(path.relative(SRC, file));
      }
    }
    expect(creators).toEqual(['jobs/job-store.ts']);
  });
});
