import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestApi, type TestApi } from './support/test-api.js';

describe('the api process serves health checks and the web app', () => {
  let db: TestDatabase;
  let api: TestApi;
  let webDir: string;
  let origin: string;

  beforeAll(async () => {
    webDir = await mkdtemp(path.join(tmpdir(), 'backups-web-'));
    await mkdir(path.join(webDir, 'assets'));
    await writeFile(path.join(webDir, 'index.html'), '<!doctype html><title>Backups</title>');
    await writeFile(path.join(webDir, 'assets/app-1234.js'), 'console.log(1)');
    await writeFile(path.join(path.dirname(webDir), 'secret.txt'), 'no');
    db = await createTestDatabase();
    api = await startTestApi({ db, config: { BACKUPS_WEB_DIR: webDir } });
    origin = new URL(api.url).origin;
  });
  afterAll(async () => {
    await api?.stop();
    await db?.drop();
    await rm(webDir, { recursive: true, force: true });
  });

  it('/healthz and /readyz answer 200 while MySQL and Redis are reachable', async () => {
    expect((await fetch(`${origin}/healthz`)).status).toBe(200);
    const ready = await fetch(`${origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('serves the SPA files, index.html for app routes, and nothing outside its folder', async () => {
    const asset = await fetch(`${origin}/assets/app-1234.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('javascript');
    expect(asset.headers.get('cache-control')).toContain('immutable');

    const route = await fetch(`${origin}/jobs/12`);
    expect(route.status).toBe(200);
    expect(await route.text()).toContain('<title>Backups</title>');

    const missing = await fetch(`${origin}/assets/missing.js`);
    expect(missing.status).toBe(404);
    for (const attempt of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
    ]) {
      const response = await fetch(`${origin}${attempt}`);
      expect(await response.text()).not.toBe('no');
    }
  });

  it('answers GraphQL over HTTP on /graphql', async () => {
    const result = await api.gql('{ __typename }');
    expect(result.data).toEqual({ __typename: 'Query' });
  });
});
