import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/auth/session.entity.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildCustomer } from '../support/factories.js';
import { startTestApi, type TestApi } from './support/test-api.js';

describe('expired sessions', () => {
  let db: TestDatabase;
  let api: TestApi | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await api?.stop();
    await db.drop();
  });

  it('are removed when the api starts; live ones stay', async () => {
    const customer = await buildCustomer(db.orm.em);
    const em = db.orm.em.fork();
    em.create(Session, {
      id: 'e'.repeat(64),
      customer: customer.id,
      expiresAt: new Date(Date.now() - 1000),
    });
    em.create(Session, {
      id: 'l'.repeat(64),
      customer: customer.id,
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await em.flush();
    api = await startTestApi({ db });
    const until = Date.now() + 5000;
    while (
      (await db.orm.em.fork().count(Session, { id: 'e'.repeat(64) })) > 0 &&
      Date.now() < until
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = await db.orm.em.fork().find(Session, { customer: customer.id });
    expect(left.map((s) => s.id)).toEqual(['l'.repeat(64)]);
  });
});
