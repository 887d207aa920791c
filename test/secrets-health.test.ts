import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import type { Authenticator } from '../src/core/principal.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { postgresAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();
const DAY = 86_400_000;

/** Grants monitoring:read to `Bearer monitor`. */
const authenticate: Authenticator<FastifyRequest> = async (request) =>
  request.headers.authorization === 'Bearer monitor'
    ? { kind: 'user', id: 'monitor', orgId: null, permissions: new Set(['monitoring:read']) }
    : null;

function suite(database: 'sqlite' | 'postgres') {
  describe(`secrets in health and metrics on ${database}`, () => {
    const clock = new ManualClock();
    const values = [0, 1, 2, 3].map((index) => `planted-${index}-${randomBytes(12).toString('hex')}`);
    let t: TestApp;

    beforeAll(async () => {
      t = await startTestApp({ database, clock, authenticate });
    });
    afterAll(async () => {
      await t?.close();
    });

    async function detailedSecrets(): Promise<unknown> {
      const res = await t.app.inject({
        method: 'GET',
        url: '/health/detailed',
        headers: { authorization: 'Bearer monitor' },
      });
      expect(res.statusCode).toBe(200);
      for (const value of values) expect(res.body).not.toContain(value);
      return res.json().secrets;
    }

    async function overdueGauge(): Promise<string[]> {
      const res = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      return res.body.split('\n').filter((line) => line.includes('bastion_secrets_rotation_overdue'));
    }

    it('shows no secrets and a zero gauge on a new vault', async () => {
      expect(await detailedSecrets()).toEqual({ count: 0, rotation_overdue: [] });
      expect(await overdueGauge()).toEqual([
        '# HELP bastion_secrets_rotation_overdue Secrets in the vault past their rotation period.',
        '# TYPE bastion_secrets_rotation_overdue gauge',
        'bastion_secrets_rotation_overdue 0',
      ]);
    });

    it('reports secrets past their rotation period until they are rotated', async () => {
      const vault = t.app.bastion.vault;
      await vault.set('slack/webhook', values[0]!, { rotationPeriodDays: 1 });
      await vault.set('smtp/password', values[1]!, { rotationPeriodDays: 30 });
      await vault.set('no/period', values[2]!);
      expect(await detailedSecrets()).toEqual({ count: 3, rotation_overdue: [] });

      clock.advance(2 * DAY);
      expect(await detailedSecrets()).toEqual({ count: 3, rotation_overdue: ['slack/webhook'] });
      expect(await overdueGauge()).toContain('bastion_secrets_rotation_overdue 1');

      clock.advance(30 * DAY);
      expect(await detailedSecrets()).toEqual({
        count: 3,
        rotation_overdue: ['slack/webhook', 'smtp/password'],
      });
      expect(await overdueGauge()).toContain('bastion_secrets_rotation_overdue 2');

      await vault.rotate('slack/webhook', values[3]!);
      expect(await detailedSecrets()).toEqual({ count: 3, rotation_overdue: ['smtp/password'] });
      expect(await overdueGauge()).toContain('bastion_secrets_rotation_overdue 1');
      await vault.delete('smtp/password');
      expect(await overdueGauge()).toContain('bastion_secrets_rotation_overdue 0');
    });

    it('never writes a secret value to the logs', async () => {
      expect((await t.app.bastion.vault.get('slack/webhook')).value).toBe(values[3]);
      await t.app.bastion.vault.get('missing').catch(() => {});
      for (const value of values) expect(t.logs.text).not.toContain(value);
    });
  });
}

suite('sqlite');
describe.skipIf(!pgUp)('on PostgreSQL', () => {
  suite('postgres');
});
