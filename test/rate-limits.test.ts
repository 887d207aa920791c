import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import { createApp } from '../src/server/create-app.ts';
import { LogCapture, startTestApp, type TestApp, type TestAppOptions } from './support/app.ts';
import { ADMIN, bearer, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { relay } from './support/redis-relay.ts';
import { REDIS_URL_TEST, redisAvailable, uniqueName } from './support/services.ts';

const redisUp = await redisAvailable();

const routes: TestAppOptions['routes'] = (app: FastifyInstance) => {
  app.get('/open', { config: { auth: 'public' } }, async () => ({ ok: true }));
  app.get(
    '/scarce',
    { config: { auth: 'public', rateLimit: { points: 2, durationSeconds: 60 } } },
    async () => ({
      ok: true,
    }),
  );
  app.get('/unlimited', { config: { auth: 'public', rateLimit: false } }, async () => ({ ok: true }));
};

let current: TestApp | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const from = (ip: string) => ({ 'x-forwarded-for': ip });

describe('rate limits per client address', () => {
  it('admits the limit, then 429 with Retry-After and RateLimit headers; other addresses are unaffected', async () => {
    current = await startTestApp({
      routes,
      env: { BASTION_RATE_LIMIT_IP: '5', TRUSTED_PROXIES: '127.0.0.1' },
    });
    const { app } = current;
    const remaining: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const response = await app.inject({ url: '/open', headers: from('203.0.113.1') });
      expect(response.statusCode).toBe(200);
      expect(response.headers['ratelimit-limit']).toBe('5');
      remaining.push(String(response.headers['ratelimit-remaining']));
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const refused = await app.inject({ url: '/open', headers: from('203.0.113.1') });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({
      error: 'too_many_requests',
      request_id: refused.headers['x-request-id'],
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['ratelimit-reset'])).toBeGreaterThan(0);
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(refused.headers['x-content-type-options']).toBe('nosniff');
    // A 404 counts too, and is refused the same way.
    expect((await app.inject({ url: '/nowhere', headers: from('203.0.113.1') })).statusCode).toBe(429);
    expect((await app.inject({ url: '/open', headers: from('203.0.113.2') })).statusCode).toBe(200);
    expect((await app.inject({ url: '/unlimited', headers: from('203.0.113.1') })).statusCode).toBe(200);
  });

  it('groups IPv6 clients by /64, so rotating addresses inside one /64 does not help', async () => {
    current = await startTestApp({
      routes,
      env: { BASTION_RATE_LIMIT_IP: '3', TRUSTED_PROXIES: '127.0.0.1' },
    });
    const { app } = current;
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i += 1) {
      statuses.push(
        (await app.inject({ url: '/open', headers: from(`2001:db8:5:6::${i.toString(16)}`) })).statusCode,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await app.inject({ url: '/open', headers: from('2001:db8:5:7::1') })).statusCode).toBe(200);
  });

  it('a spoofed X-Forwarded-For from an untrusted peer does not buy a fresh budget', async () => {
    current = await startTestApp({ routes, env: { BASTION_RATE_LIMIT_IP: '3' } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      statuses.push(
        (await current.app.inject({ url: '/open', headers: from(`198.51.100.${i}`) })).statusCode,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it("a route's own limit applies on top, and identity endpoints have a stricter default", async () => {
    current = await startTestApp({
      routes,
      env: { BASTION_RATE_LIMIT_IP: '1000', TRUSTED_PROXIES: '127.0.0.1' },
      configure: (config) => {
        config.protection.rateLimit.identity = { points: 3, durationSeconds: 60 };
      },
    });
    const { app } = current;
    const scarce = [];
    for (let i = 0; i < 3; i += 1)
      scarce.push((await app.inject({ url: '/scarce', headers: from('192.0.2.1') })).statusCode);
    expect(scarce).toEqual([200, 200, 429]);
    expect((await app.inject({ url: '/open', headers: from('192.0.2.1') })).statusCode).toBe(200);
    const logins = [];
    for (let i = 0; i < 4; i += 1) {
      const response = await app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: from('192.0.2.1'),
        payload: { email: 'nobody@example.test', password: 'wrong password here' },
      });
      logins.push(response.statusCode);
    }
    expect(logins).toEqual([401, 401, 401, 429]);
  });
});

describe('rate limit status', () => {
  it('/health/detailed reports whether limits are shared, local or falling back', async () => {
    current = await startIdentityApp({ env: { BASTION_RATE_LIMIT_IP: '1000' } });
    const admin = await login(current.app, ADMIN.email, ADMIN.password);
    const detailed = await current.app.inject({
      url: '/health/detailed',
      headers: bearer(admin.access_token),
    });
    expect(detailed.statusCode).toBe(200);
    expect(detailed.json().rate_limits).toEqual({
      enabled: true,
      backend: 'memory',
      mode: 'local',
      fallback_since: null,
    });
  });
});

describe('rate limits per caller', () => {
  it('limits each signed-in user separately, whatever address they come from', async () => {
    current = await startIdentityApp({
      env: { BASTION_RATE_LIMIT_IP: '1000', BASTION_RATE_LIMIT_PRINCIPAL: '3', TRUSTED_PROXIES: '127.0.0.1' },
    });
    const { app } = current;
    const admin = await login(app, ADMIN.email, ADMIN.password);
    await createUser(app, admin.access_token, 'other@example.test');
    const other = await login(app, 'other@example.test', STRONG_PASSWORD);
    const statuses = [];
    for (let i = 0; i < 3; i += 1) {
      const response = await app.inject({
        url: '/auth/me',
        headers: { ...bearer(other.access_token), ...from(`192.0.2.${i}`) },
      });
      statuses.push(response.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200]);
    const refused = await app.inject({ url: '/auth/me', headers: bearer(other.access_token) });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect((await app.inject({ url: '/auth/me', headers: bearer(admin.access_token) })).statusCode).toBe(200);
  });

  it("a signed-in caller's RateLimit headers show the tightest of the address and caller limits", async () => {
    current = await startIdentityApp({
      env: {
        BASTION_RATE_LIMIT_IP: '1000',
        BASTION_RATE_LIMIT_PRINCIPAL: '50',
        TRUSTED_PROXIES: '127.0.0.1',
      },
    });
    const { app } = current;
    const admin = await login(app, ADMIN.email, ADMIN.password);
    // From a fresh address the caller's own limit (50) is the tighter one.
    const fresh = await app.inject({
      url: '/auth/me',
      headers: { ...bearer(admin.access_token), ...from('192.0.2.7') },
    });
    expect(fresh.headers['ratelimit-limit']).toBe('50');
    // From an address that has spent 990 of its 1000, the address limit is.
    for (let i = 0; i < 990; i += 1) {
      await app.inject({ url: '/health/live', headers: from('192.0.2.8') });
    }
    const busy = await app.inject({
      url: '/auth/me',
      headers: { ...bearer(admin.access_token), ...from('192.0.2.8') },
    });
    expect(busy.statusCode).toBe(200);
    expect(busy.headers['ratelimit-limit']).toBe('1000');
    expect(busy.headers['ratelimit-remaining']).toBe('9');
  });
});

describe.skipIf(!redisUp)('rate limits with Redis', () => {
  async function instance(redisUrl: string, keyPrefix: string, dirs: string[]): Promise<FastifyInstance> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-test-'));
    dirs.push(dataDir);
    const config = await loadConfig({
      file: null,
      env: {
        NODE_ENV: 'test',
        BASTION_DATA_DIR: dataDir,
        LOG_LEVEL: 'silent',
        REDIS_URL: redisUrl,
        BASTION_MASTER_KEY: randomBytes(32).toString('base64'),
        BASTION_RATE_LIMIT_IP: '10',
      },
    });
    config.redis.keyPrefix = keyPrefix;
    config.loadShedding.enabled = false;
    return createApp({ config, logDestination: new LogCapture(), routes });
  }

  it('two instances together admit no more than the limit', async () => {
    const dirs: string[] = [];
    const prefix = `${uniqueName('bastion_test')}:`;
    const apps = [await instance(REDIS_URL_TEST, prefix, dirs), await instance(REDIS_URL_TEST, prefix, dirs)];
    try {
      let admitted = 0;
      for (let i = 0; i < 30; i += 1) {
        const app = apps[i % 2] as FastifyInstance;
        if ((await app.inject({ url: '/open' })).statusCode === 200) admitted += 1;
      }
      expect(admitted).toBe(10);
    } finally {
      for (const app of apps) await app.close();
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  });

  it('falls back to a local limit while Redis is down, says so in /health/detailed, and recovers', async () => {
    const r = relay();
    const dirs: string[] = [];
    const app = await instance(await r.start(), `${uniqueName('bastion_test')}:`, dirs);
    try {
      expect((await app.inject({ url: '/open' })).statusCode).toBe(200);
      expect(rateLimitMode(app)).toBe('shared');
      r.cut();
      const during: number[] = [];
      for (let i = 0; i < 12; i += 1) during.push((await app.inject({ url: '/open' })).statusCode);
      // Served while Redis is down, and still limited: the local limiter counts 10.
      expect(during.filter((status) => status === 200)).toHaveLength(10);
      expect(during).toContain(429);
      expect(rateLimitMode(app)).toBe('local-fallback');
      r.restore();
      const deadline = Date.now() + 10_000;
      let mode = rateLimitMode(app);
      while (Date.now() < deadline && mode !== 'shared') {
        await app.inject({ url: '/open' });
        mode = rateLimitMode(app);
        if (mode !== 'shared') await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(mode).toBe('shared');
    } finally {
      await app.close();
      await r.stop();
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  });
});

function rateLimitMode(app: FastifyInstance): string {
  const services = (app as unknown as { bastion: { rateLimits: { status(): { mode: string } } } }).bastion;
  return services.rateLimits.status().mode;
}
