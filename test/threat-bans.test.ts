import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestApp } from './support/app.ts';
import { ADMIN, bearer, login, startIdentityApp } from './support/identity.ts';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const from = (ip: string) => ({ 'x-forwarded-for': ip });

async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await probe();
  }
  return value;
}

async function admin(app: FastifyInstance): Promise<Record<string, string>> {
  return bearer((await login(app, ADMIN.email, ADMIN.password)).access_token);
}

describe('threat scores and automatic bans', () => {
  it('a 404 flood bans the address, for longer each time; other addresses are untouched', async () => {
    t = await startIdentityApp({
      env: { TRUSTED_PROXIES: '127.0.0.1' },
      configure: (config) => {
        config.protection.threat.enabled = true;
        config.protection.threat.banThreshold = 20;
        config.protection.threat.points.not_found = 2;
        config.protection.threat.banDurationsSeconds = [60, 3600];
      },
    });
    const { app } = t;
    const headers = await admin(app);
    const probe = () => app.inject({ url: '/health/live', headers: from('203.0.113.66') });
    expect((await probe()).statusCode).toBe(200);
    for (let i = 0; i < 10; i += 1)
      await app.inject({ url: `/wp-admin/${i}`, headers: from('203.0.113.66') });
    const banned = await waitFor(probe, (response) => response.statusCode === 403);
    expect(banned.statusCode).toBe(403);
    expect(banned.json().error).toBe('request_blocked');
    expect((await app.inject({ url: '/health/live', headers: from('203.0.113.67') })).statusCode).toBe(200);

    const rules = (await app.inject({ url: '/api/v1/monitoring/security/ip-rules', headers })).json()
      .items as Array<{
      cidr: string;
      source: string;
      expires_at: string;
    }>;
    const ban = rules.find((rule) => rule.cidr === '203.0.113.66');
    expect(ban?.source).toBe('ban');
    const firstLength = Date.parse(ban!.expires_at) - Date.now();
    expect(firstLength).toBeGreaterThan(50_000);
    expect(firstLength).toBeLessThanOrEqual(60_000);

    // Lifted by an operator, the address offends again: the second ban is longer.
    await app.inject({
      method: 'POST',
      url: '/api/v1/monitoring/security/unblock-ip',
      headers,
      payload: { ip: '203.0.113.66' },
    });
    expect((await probe()).statusCode).toBe(200);
    for (let i = 0; i < 10; i += 1) await app.inject({ url: `/.env?${i}`, headers: from('203.0.113.66') });
    expect((await waitFor(probe, (response) => response.statusCode === 403)).statusCode).toBe(403);
    const again = (await app.inject({ url: '/api/v1/monitoring/security/ip-rules', headers }))
      .json()
      .items.find((rule: { cidr: string }) => rule.cidr === '203.0.113.66');
    expect(Date.parse(again.expires_at) - Date.now()).toBeGreaterThan(3_000_000);

    const events = (
      await app.inject({ url: '/api/v1/monitoring/security/events?kind=ip_banned', headers })
    ).json().items;
    expect(events).toHaveLength(2);
    expect(events.map((event: { details: { ban: number } }) => event.details.ban).sort()).toEqual([1, 2]);
  });

  it('an allow-listed address is never banned', async () => {
    t = await startIdentityApp({
      env: { TRUSTED_PROXIES: '127.0.0.1' },
      configure: (config) => {
        config.protection.threat.enabled = true;
        config.protection.threat.banThreshold = 10;
        config.protection.ipRules.allow = [{ cidr: '198.51.100.0/24', reason: 'monitoring' }];
      },
    });
    for (let i = 0; i < 20; i += 1)
      await t.app.inject({ url: `/missing/${i}`, headers: from('198.51.100.5') });
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect((await t.app.inject({ url: '/health/live', headers: from('198.51.100.5') })).statusCode).toBe(200);
  });

  it('credential stuffing (one address, many accounts) is reported and banned; many addresses on one account are reported', async () => {
    t = await startIdentityApp({
      env: { TRUSTED_PROXIES: '127.0.0.1' },
      configure: (config) => {
        config.protection.threat.enabled = true;
        config.protection.threat.stuffingAccounts = 4;
        config.protection.threat.guessingAddresses = 4;
        config.protection.threat.points.identity_failure = 1;
      },
    });
    const { app } = t;
    const fail = (email: string, ip: string) =>
      app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: from(ip),
        payload: { email, password: 'not the password at all' },
      });
    for (let i = 0; i < 4; i += 1) await fail(`victim${i}@example.test`, '192.0.2.50');
    const probe = () => app.inject({ url: '/health/live', headers: from('192.0.2.50') });
    expect((await waitFor(probe, (response) => response.statusCode === 403)).statusCode).toBe(403);
    for (let i = 0; i < 4; i += 1) await fail(ADMIN.email, `192.0.2.${100 + i}`);
    const headers = await admin(app);
    const kinds = await waitFor(
      async () =>
        (await app.inject({ url: '/api/v1/monitoring/security/events', headers }))
          .json()
          .items.map((event: { kind: string }) => event.kind) as string[],
      (list) => list.includes('distributed_guessing'),
    );
    expect(kinds).toContain('credential_stuffing');
    expect(kinds).toContain('distributed_guessing');
    // No raw e-mail address in the guessing event: the account is a hash.
    const guessing = (
      await app.inject({ url: '/api/v1/monitoring/security/events?kind=distributed_guessing', headers })
    ).json().items[0];
    expect(JSON.stringify(guessing)).not.toContain(ADMIN.email);
  });
});

describe('incidents and the threat level', () => {
  it('groups events into incidents, moves them along, and raises the threat level', async () => {
    t = await startIdentityApp({
      env: { TRUSTED_PROXIES: '127.0.0.1' },
      configure: (config) => {
        config.protection.threat.enabled = true;
        config.protection.threat.banThreshold = 10;
      },
    });
    const { app } = t;
    const headers = await admin(app);
    const status = async () =>
      (await app.inject({ url: '/api/v1/monitoring/security/status', headers })).json();
    expect((await status()).threat_level).toBe('low');
    for (let i = 0; i < 6; i += 1) await app.inject({ url: `/nope/${i}`, headers: from('203.0.113.90') });
    const incidents = await waitFor(
      async () => (await app.inject({ url: '/api/v1/monitoring/security/incidents', headers })).json().items,
      (items: Array<Record<string, unknown>>) => items.length > 0,
    );
    expect(incidents[0]).toMatchObject({
      kind: 'ip_banned',
      client_ip: '203.0.113.90',
      status: 'open',
      event_count: 1,
    });
    const level = await status();
    expect(level.threat_level).toBe('high');
    expect(level.active_bans).toBe(1);
    expect(level.open_incidents.high).toBe(1);

    const id = (incidents[0] as { id: string }).id;
    const ack = await app.inject({
      method: 'POST',
      url: `/api/v1/monitoring/security/incidents/${id}/acknowledge`,
      headers,
    });
    expect(ack.json()).toMatchObject({ status: 'acknowledged' });
    expect(ack.json().acknowledged_at).toBeTruthy();
    const resolved = await app.inject({
      method: 'POST',
      url: `/api/v1/monitoring/security/incidents/${id}/resolve`,
      headers,
    });
    expect(resolved.json()).toMatchObject({ status: 'resolved' });
    const twice = await app.inject({
      method: 'POST',
      url: `/api/v1/monitoring/security/incidents/${id}/resolve`,
      headers,
    });
    expect(twice.statusCode).toBe(409);
    const open = (
      await app.inject({ url: '/api/v1/monitoring/security/incidents?status=open', headers })
    ).json().items;
    expect(open).toHaveLength(0);
    const unknown = await app.inject({
      method: 'POST',
      url: '/api/v1/monitoring/security/incidents/0123456789abcdef0123456789ab/resolve',
      headers,
    });
    expect(unknown.statusCode).toBe(404);
    expect((await app.inject({ url: '/api/v1/monitoring/security/status' })).statusCode).toBe(401);
  });
});
