import { describe, expect, it } from 'vitest';
import { startTestApp } from './support/app.ts';
import { postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();

describe('smoke', () => {
  it('serves liveness on SQLite', async () => {
    const t = await startTestApp();
    const res = await t.app.inject({ method: 'GET', url: '/health/live' });
    expect(res.statusCode).toBe(200);
    await t.close();
    expect(t.logs.lines.some((l) => l.msg === 'request completed')).toBe(true);
  });
  it.skipIf(!pgUp)('serves readiness on PostgreSQL', async () => {
    const t = await startTestApp({ database: 'postgres' });
    const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.json().status).toBe('pass');
    await t.close();
  });
});
