import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import { clientKey, formatRange, parseCidr, parseIp } from '../src/core/ip-address.ts';
import { type IpRule, IpRuleSet } from '../src/protection/ip-rule-set.ts';
import { createApp } from '../src/server/create-app.ts';
import { createPostgresSchema, LogCapture, type TestApp } from './support/app.ts';
import { ADMIN, call, login, startIdentityApp } from './support/identity.ts';
import {
  DATABASE_URL_TEST,
  postgresAvailable,
  REDIS_URL_TEST,
  redisAvailable,
  uniqueName,
} from './support/services.ts';

const servicesUp = (await postgresAvailable()) && (await redisAvailable());

function rule(cidr: string, action: 'allow' | 'deny', expiresAt: number | null = null): IpRule {
  const range = parseCidr(cidr);
  if (!range) throw new Error(cidr);
  return { id: cidr, cidr, range, action, reason: 'test', source: 'api', expiresAt };
}

describe('addresses and CIDRs', () => {
  it('reads IPv4, IPv6 and IPv4-mapped IPv6 as one address space', () => {
    expect(parseIp('1.2.3.4')).toBe(parseIp('::ffff:1.2.3.4'));
    expect(parseIp('::ffff:102:304')).toBe(parseIp('1.2.3.4'));
    expect(parseIp('2001:db8::1')).toBe(0x20010db8000000000000000000000001n);
    for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', 'localhost', '2001:db8::1::2', '', '1.2.3.4/8']) {
      expect(parseIp(bad), bad).toBeNull();
    }
  });

  it('parses and prints CIDRs canonically, refusing nonsense', () => {
    expect(formatRange(parseCidr('10.1.2.3/8')!)).toBe('10.0.0.0/8');
    expect(formatRange(parseCidr('203.0.113.7')!)).toBe('203.0.113.7');
    expect(formatRange(parseCidr('2001:DB8:0:0::/32')!)).toBe('2001:db8::/32');
    expect(formatRange(parseCidr('::/0')!)).toBe('::/0');
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8x', 'nope/8', '10.0.0.0/']) {
      expect(parseCidr(bad), bad).toBeNull();
    }
  });

  it('counts IPv6 clients by /64 and IPv4 clients by address', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:db8:1:2:ffff:1:2:3'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
    expect(clientKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('::ffff:198.51.100.4')).toBe('198.51.100.4');
    expect(clientKey('198.51.100.4')).toBe('198.51.100.4');
  });
});

describe('IpRuleSet', () => {
  it('finds the covering rule; allow wins over deny; expired rules are ignored', () => {
    const now = 1_000_000;
    const set = new IpRuleSet([
      rule('10.0.0.0/8', 'deny'),
      rule('10.1.0.0/16', 'allow'),
      rule('192.0.2.0/24', 'deny', now - 1),
      rule('2001:db8::/32', 'deny'),
      rule('198.51.100.7', 'deny'),
    ]);
    expect(set.decide('10.9.9.9', now)?.action).toBe('deny');
    expect(set.decide('10.1.2.3', now)?.action).toBe('allow');
    expect(set.decide('::ffff:10.9.9.9', now)?.action).toBe('deny');
    expect(set.decide('192.0.2.1', now)).toBeNull();
    expect(set.decide('2001:db8:ffff::1', now)?.rule.cidr).toBe('2001:db8::/32');
    expect(set.decide('2001:db9::1', now)).toBeNull();
    expect(set.decide('198.51.100.7', now)?.action).toBe('deny');
    expect(set.decide('198.51.100.8', now)).toBeNull();
    expect(set.decide('not an ip', now)).toBeNull();
  });

  it('an IPv6 rule covering the mapped block applies to IPv4 clients', () => {
    const set = new IpRuleSet([rule('::/0', 'deny')]);
    expect(set.decide('8.8.8.8', 0)?.action).toBe('deny');
    expect(set.decide('2001:db8::1', 0)?.action).toBe('deny');
  });

  it('agrees with a linear scan over many random rules and addresses', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const octet = () => Math.floor(random() * 256);
    const rules = Array.from({ length: 2000 }, () =>
      rule(
        `${octet()}.${octet()}.${octet()}.0/${16 + Math.floor(random() * 17)}`,
        random() < 0.2 ? 'allow' : 'deny',
      ),
    );
    const set = new IpRuleSet(rules);
    for (let i = 0; i < 2000; i += 1) {
      const ip = `${octet()}.${octet()}.${octet()}.${octet()}`;
      const value = parseIp(ip)!;
      const covering = rules.filter((r) => r.range.start <= value && value <= r.range.end);
      const expected =
        covering.length === 0 ? null : covering.some((r) => r.action === 'allow') ? 'allow' : 'deny';
      expect(set.decide(ip, 0)?.action ?? null, ip).toBe(expected);
    }
  });
});

describe('IP rules over HTTP', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  it('config deny rules answer 403 request_blocked; allow rules win; events are stored once a minute', async () => {
    t = await startIdentityApp({
      env: { TRUSTED_PROXIES: '127.0.0.1' },
      configure: (config) => {
        config.protection.ipRules.deny = [{ cidr: '203.0.113.0/24', reason: 'abuse' }];
        config.protection.ipRules.allow = [{ cidr: '203.0.113.10', reason: 'monitoring' }];
      },
    });
    const blocked = await t.app.inject({ url: '/health/live', headers: from('203.0.113.5') });
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json()).toMatchObject({
      error: 'request_blocked',
      request_id: blocked.headers['x-request-id'],
    });
    await t.app.inject({ url: '/nope', headers: from('203.0.113.5') });
    expect((await t.app.inject({ url: '/health/live', headers: from('203.0.113.10') })).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/health/live', headers: from('198.51.100.1') })).statusCode).toBe(200);
    const tokens = await login(t.app, ADMIN.email, ADMIN.password);
    const events = await call(
      t.app,
      tokens.access_token,
      'GET',
      '/api/v1/monitoring/security/events?kind=ip_blocked',
    );
    expect(events.statusCode).toBe(200);
    const items = events.json().items as Array<{ client_ip: string; blocked: boolean }>;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ client_ip: '203.0.113.5', blocked: true });
  });

  it('block-ip and unblock-ip through the API, with expiry, validation, self-protection and permissions', async () => {
    t = await startIdentityApp({ env: { TRUSTED_PROXIES: '127.0.0.1' } });
    const admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    const block = (body: unknown) =>
      t!.app.inject({
        method: 'POST',
        url: '/api/v1/monitoring/security/block-ip',
        headers: { authorization: `Bearer ${admin}` },
        payload: body as Record<string, unknown>,
      });
    const created = await block({ cidr: '198.51.100.0/24', reason: 'credential stuffing' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      cidr: '198.51.100.0/24',
      action: 'deny',
      source: 'api',
      expires_at: null,
    });
    expect((await t.app.inject({ url: '/health/live', headers: from('198.51.100.77') })).statusCode).toBe(
      403,
    );

    const temporary = await block({ ip: '192.0.2.9', reason: 'scanner', duration_seconds: 1 });
    expect(temporary.statusCode).toBe(201);
    expect((await t.app.inject({ url: '/health/live', headers: from('192.0.2.9') })).statusCode).toBe(403);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await t.app.inject({ url: '/health/live', headers: from('192.0.2.9') })).statusCode).toBe(200);

    for (const bad of [
      { ip: '10.0.0.0/8', reason: 'x' },
      { cidr: 'nope', reason: 'x' },
      { reason: 'x' },
      { ip: '1.2.3.4', cidr: '1.2.3.0/24', reason: 'x' },
    ]) {
      expect((await block(bad)).statusCode, JSON.stringify(bad)).toBe(400);
    }
    // The caller's own address (the inject peer, 127.0.0.1) cannot be blocked by mistake.
    expect((await block({ cidr: '127.0.0.0/8', reason: 'oops' })).statusCode).toBe(409);

    const rules = await call(t.app, admin, 'GET', '/api/v1/monitoring/security/ip-rules');
    expect(rules.json().items.map((r: { cidr: string }) => r.cidr)).toContain('198.51.100.0/24');

    const unblock = await call(t.app, admin, 'POST', '/api/v1/monitoring/security/unblock-ip', {
      cidr: '198.51.100.0/24',
    });
    expect(unblock.json()).toEqual({ removed: 1 });
    expect((await t.app.inject({ url: '/health/live', headers: from('198.51.100.77') })).statusCode).toBe(
      200,
    );
    expect(
      (await call(t.app, admin, 'POST', '/api/v1/monitoring/security/unblock-ip', { ip: '198.51.100.1' }))
        .statusCode,
    ).toBe(404);

    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/v1/monitoring/security/block-ip',
          payload: { ip: '1.2.3.4', reason: 'x' },
        })
      ).statusCode,
    ).toBe(401);
  });

  it.skipIf(!servicesUp)(
    'a block on one instance takes effect on another within a second (PostgreSQL + Redis)',
    async () => {
      const { schema, drop } = await createPostgresSchema();
      const masterKey = randomBytes(32).toString('base64');
      const keyPrefix = `${uniqueName('bastion_test')}:`;
      const instances: FastifyInstance[] = [];
      const dirs: string[] = [];
      try {
        for (let i = 0; i < 2; i += 1) {
          const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-test-'));
          dirs.push(dataDir);
          const config = await loadConfig({
            file: null,
            env: {
              NODE_ENV: 'test',
              BASTION_DATA_DIR: dataDir,
              LOG_LEVEL: 'silent',
              DATABASE_URL: DATABASE_URL_TEST,
              REDIS_URL: REDIS_URL_TEST,
              BASTION_MASTER_KEY: masterKey,
              BASTION_ADMIN_EMAIL: ADMIN.email,
              BASTION_ADMIN_PASSWORD: ADMIN.password,
              TRUSTED_PROXIES: '127.0.0.1',
            },
          });
          config.redis.keyPrefix = keyPrefix;
          config.loadShedding.enabled = false;
          instances.push(
            await createApp({ config, logDestination: new LogCapture(), databaseSchema: schema }),
          );
        }
        const [one, two] = instances as [FastifyInstance, FastifyInstance];
        const admin = (await login(one, ADMIN.email, ADMIN.password)).access_token;
        expect((await two.inject({ url: '/health/live', headers: from('192.0.2.200') })).statusCode).toBe(
          200,
        );
        const created = await call(one, admin, 'POST', '/api/v1/monitoring/security/block-ip', {
          ip: '192.0.2.200',
          reason: 'test',
        });
        expect(created.statusCode).toBe(201);
        const started = Date.now();
        let status = 200;
        while (Date.now() - started < 1000 && status !== 403) {
          status = (await two.inject({ url: '/health/live', headers: from('192.0.2.200') })).statusCode;
          if (status !== 403) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(status).toBe(403);
        await call(one, admin, 'POST', '/api/v1/monitoring/security/unblock-ip', { ip: '192.0.2.200' });
        const unblockedAt = Date.now();
        while (Date.now() - unblockedAt < 1000 && status !== 200) {
          status = (await two.inject({ url: '/health/live', headers: from('192.0.2.200') })).statusCode;
          if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(status).toBe(200);
      } finally {
        for (const app of instances) await app.close();
        for (const dir of dirs) await rm(dir, { recursive: true, force: true });
        await drop();
      }
    },
  );
});
