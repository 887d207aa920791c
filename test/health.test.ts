import net from 'node:net';
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../src/core/principal.ts';
import { BUILD_INFO } from '../src/observability/build-info.ts';
import { MIGRATIONS } from '../src/storage/migration-list.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { postgresAvailable, REDIS_URL_TEST, redisAvailable } from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const HEALTH_JSON = /^application\/health\+json/;
const BASE_KEYS = [
  'database:responseTime',
  'disk:freeRatio',
  'memory:heapUtilization',
  'eventLoop:delayP99',
  'migrations:pending',
];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Grants monitoring:read to `Bearer monitor`, nothing to `Bearer viewer`, nobody otherwise. */
const authenticate: Authenticator<FastifyRequest> = async (request) => {
  const auth = request.headers.authorization;
  if (auth === 'Bearer monitor') {
    return { kind: 'user', id: 'monitor', orgId: null, permissions: new Set(['monitoring:read']) };
  }
  if (auth === 'Bearer viewer')
    return { kind: 'user', id: 'viewer', orgId: null, permissions: new Set(['org:read']) };
  return null;
};
const monitor = { authorization: 'Bearer monitor' };

type Check = {
  componentType: string;
  status: string;
  time: string;
  observedValue?: unknown;
  observedUnit?: string;
  output?: string;
};
type Report = { status: string; checks: Record<string, Check[]>; [key: string]: unknown };

function suite(
  name: string,
  database: 'sqlite' | 'postgres',
  stateKey: 'sharedState' | 'redis',
  env: Record<string, string> = {},
) {
  describe(name, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ database, env, authenticate });
    });
    afterAll(async () => {
      await t?.close();
    });
    const expectedKeys = [...BASE_KEYS, `${stateKey}:responseTime`].sort();

    it('/health/live is 200 application/health+json {"status":"pass"}', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/health/live' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(HEALTH_JSON);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toBe('{"status":"pass"}');
    });

    it('/health/ready lists every check by component:measurement, without observed values', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(HEALTH_JSON);
      expect(res.headers['cache-control']).toBe('no-store');
      const body = res.json() as Report;
      expect(['pass', 'warn']).toContain(body.status);
      expect(Object.keys(body).sort()).toEqual(['checks', 'status']);
      expect(Object.keys(body.checks).sort()).toEqual(expectedKeys);
      for (const [key, entries] of Object.entries(body.checks)) {
        expect(entries, key).toHaveLength(1);
        const entry = entries[0]!;
        // Public: what passed, never the numbers or the failure text.
        expect(Object.keys(entry).sort(), key).toEqual(['componentType', 'status', 'time']);
        expect(['pass', 'warn'], key).toContain(entry.status);
        expect(entry.time).toMatch(ISO);
      }
      expect(body.checks['database:responseTime']?.[0]?.componentType).toBe('datastore');
      expect(body.checks['memory:heapUtilization']?.[0]?.componentType).toBe('system');
      expect(res.body).not.toMatch(/observed|output|version|migrations"/);
    });

    it('/health/detailed is 401 without credentials and with forged ones', async () => {
      for (const headers of [{}, { authorization: 'Bearer forged' }, { authorization: 'Bearer monitor ' }]) {
        const res = await t.app.inject({ method: 'GET', url: '/health/detailed', headers });
        expect(res.statusCode).toBe(401);
        expect(res.json().error).toBe('unauthorized');
        expect(res.body).not.toContain('observedValue');
      }
    });

    it('/health/detailed is 403 without monitoring:read', async () => {
      const res = await t.app.inject({
        method: 'GET',
        url: '/health/detailed',
        headers: { authorization: 'Bearer viewer' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.body).not.toContain('observedValue');
    });

    it('/health/detailed with monitoring:read shows observed values, policy, migrations and version', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/health/detailed', headers: monitor });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(HEALTH_JSON);
      const body = res.json() as Report;
      expect(['pass', 'warn']).toContain(body.status);
      expect(body.version).toBe(BUILD_INFO.version);
      expect(Object.keys(body.checks).sort()).toEqual(expectedKeys);
      for (const [key, entries] of Object.entries(body.checks)) {
        const entry = entries[0]!;
        expect(typeof entry.observedValue, key).toBe('number');
        expect(typeof entry.observedUnit, key).toBe('string');
        expect(entry.time).toMatch(ISO);
      }
      expect(body.checks['database:responseTime']?.[0]?.observedUnit).toBe('ms');
      expect(body.checks['disk:freeRatio']?.[0]?.observedUnit).toBe('ratio');
      const ratio = body.checks['memory:heapUtilization']?.[0]?.observedValue as number;
      expect(ratio).toBeGreaterThan(0);
      expect(ratio).toBeLessThan(1);
      expect(body.checks['migrations:pending']?.[0]).toMatchObject({
        status: 'pass',
        observedValue: 0,
        observedUnit: 'count',
      });

      expect(body.shared_state).toEqual({
        backend: stateKey === 'redis' ? 'redis' : 'memory',
        policy: { rateLimit: 'fail-open', revocation: 'fail-closed' },
      });
      expect(body.database).toEqual({ system: database });
      const migrations = body.migrations as Array<{ name: string; applied_at: string | null }>;
      expect(migrations.map((migration) => migration.name)).toEqual(Object.keys(MIGRATIONS));
      for (const migration of migrations) expect(migration.applied_at).toMatch(ISO);
      expect(typeof body.installation_id).toBe('string');
      expect(body.uptime_seconds).toBeGreaterThanOrEqual(0);
    });

    it('answers HEAD on /health/ready with the status and no body', async () => {
      const res = await t.app.inject({ method: 'HEAD', url: '/health/ready' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('');
    });
  });
}

suite('health on SQLite with memory state', 'sqlite', 'sharedState');
describe.skipIf(!pgUp)('on PostgreSQL', () => {
  suite('health on PostgreSQL with memory state', 'postgres', 'sharedState');
});
describe.skipIf(!redisUp)('on Redis', () => {
  suite('health on SQLite with Redis state', 'sqlite', 'redis', { REDIS_URL: REDIS_URL_TEST });
});
describe.skipIf(!pgUp || !redisUp)('on PostgreSQL and Redis', () => {
  suite('health on PostgreSQL with Redis state', 'postgres', 'redis', { REDIS_URL: REDIS_URL_TEST });
});

describe('a dependency outage', () => {
  describe('Redis unreachable (REDIS_URL=redis://127.0.0.1:1)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ env: { REDIS_URL: 'redis://127.0.0.1:1' }, authenticate });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('turns readiness 503 fail while liveness stays 200', async () => {
      const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.headers['content-type']).toMatch(HEALTH_JSON);
      const body = ready.json() as Report;
      expect(body.status).toBe('fail');
      expect(body.checks['redis:responseTime']?.[0]).toEqual({
        componentType: 'datastore',
        status: 'fail',
        time: expect.stringMatching(ISO),
      });
      expect(body.checks['database:responseTime']?.[0]?.status).toBe('pass');
      // Public readiness does not say why (no host, port or driver text).
      expect(ready.body).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|output/);

      const live = await t.app.inject({ method: 'GET', url: '/health/live' });
      expect(live.statusCode).toBe(200);
      expect(live.body).toBe('{"status":"pass"}');
    });

    it('says why in /health/detailed, on one line with no stack', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/health/detailed', headers: monitor });
      expect(res.statusCode).toBe(503);
      const body = res.json() as Report;
      expect(body.status).toBe('fail');
      const redis = body.checks['redis:responseTime']?.[0];
      expect(redis?.status).toBe('fail');
      expect(redis?.output).toEqual(expect.any(String));
      expect(redis?.output?.length).toBeGreaterThan(0);
      expect(redis?.output).not.toContain('\n');
      expect(redis?.output).not.toMatch(/\s+at\s+\S+\s+\(|node_modules/);
      expect(body.shared_state).toMatchObject({ backend: 'redis' });
    });

    it('still serves ordinary requests', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/no/such/route' });
      expect(res.statusCode).toBe(404);
    });
  });

  describe.skipIf(!redisUp)('Redis going away and coming back', () => {
    // A TCP relay in front of the test Redis that can refuse or forward connections.
    let up = false;
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((client) => {
      sockets.add(client);
      client.on('close', () => sockets.delete(client));
      client.on('error', () => {});
      if (!up) {
        client.destroy();
        return;
      }
      const target = new URL(REDIS_URL_TEST);
      const server = net.connect(Number(target.port || 6379), target.hostname);
      sockets.add(server);
      server.on('close', () => sockets.delete(server));
      server.on('error', () => client.destroy());
      client.pipe(server).pipe(client);
    });
    let t: TestApp;

    beforeAll(async () => {
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      const { port } = relay.address() as net.AddressInfo;
      t = await startTestApp({
        env: { REDIS_URL: `redis://127.0.0.1:${port}` },
        configure: (config) => {
          config.health.cacheMs = 0;
        },
      });
    });
    afterAll(async () => {
      await t?.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => relay.close(resolve));
    });

    it('is not ready while Redis is down and becomes ready again by itself', async () => {
      const down = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(down.statusCode).toBe(503);
      expect(down.json().checks['redis:responseTime'][0].status).toBe('fail');

      up = true;
      let status = 0;
      for (let attempt = 0; attempt < 100 && status !== 200; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = (await t.app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
      }
      expect(status).toBe(200);

      // And down again: the outage is seen, not hidden behind a stale connection.
      up = false;
      for (const socket of sockets) socket.destroy();
      status = 0;
      for (let attempt = 0; attempt < 100 && status !== 503; attempt += 1) {
        status = (await t.app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
        if (status !== 503) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(status).toBe(503);
      expect((await t.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    });
  });

  describe('database closed under the app', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ authenticate });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('turns readiness 503 fail on the database check while liveness stays 200', async () => {
      await t.app.bastion.database.close();
      const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      const body = ready.json() as Report;
      expect(body.status).toBe('fail');
      expect(body.checks['database:responseTime']?.[0]?.status).toBe('fail');
      expect(body.checks['memory:heapUtilization']?.[0]?.status).not.toBe('fail');
      expect((await t.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    });
  });
});

describe('readiness cache in the app', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      configure: (config) => {
        config.health.cacheMs = 60_000;
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves repeated probes from one run of the checks', async () => {
    let pings = 0;
    const database = t.app.bastion.database as { ping(): Promise<number> };
    const original = database.ping.bind(database);
    database.ping = async () => {
      pings += 1;
      return original();
    };
    // The cache may already hold a report from start-up; within cacheMs nothing runs again.
    const first = await t.app.inject({ method: 'GET', url: '/health/ready' });
    const before = pings;
    for (let i = 0; i < 10; i += 1) {
      const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
      expect(res.body).toBe(first.body);
    }
    expect(before).toBe(1);
    expect(pings).toBe(1);
  });
});
