import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresSchema } from '../../../test/support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from '../../../test/support/services.ts';
import { defaultRules } from '../../alerting/rules.ts';
import { loadConfig } from '../../config/load-config.ts';
import type { BastionConfig } from '../../config/schema.ts';
import { ManualClock } from '../../core/clock.ts';
import type { IpRule } from '../../protection/ip-rule-set.ts';
import { SecurityEvents } from '../../protection/security-events.ts';
import { type Database, openDatabase } from '../../storage/database.ts';
import { migrateUp } from '../../storage/migrator.ts';
import { HttpMetrics } from '../http-metrics.ts';
import { identityFailureMetrics } from './identity-failure-metrics.ts';
import { MetricHistory } from './metric-history.ts';

const pgUp = await postgresAvailable();
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const logger = pino({ level: 'silent' });

async function openBackend(
  engine: 'sqlite' | 'postgres',
): Promise<{ database: Database; cleanup(): Promise<void> }> {
  if (engine === 'postgres') {
    const schema = await createPostgresSchema();
    const database = openDatabase({ url: DATABASE_URL_TEST, schema: schema.schema, poolMax: 4 });
    await migrateUp(database);
    return { database, cleanup: () => database.close() };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bastion-metric-history-'));
  const database = openDatabase({ url: `sqlite:${path.join(dir, 'bastion.db')}` });
  await migrateUp(database);
  return {
    database,
    cleanup: async () => {
      await database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe.each([
  { engine: 'sqlite' as const, skip: false },
  { engine: 'postgres' as const, skip: !pgUp },
])('MetricHistory reads on $engine', ({ engine, skip }) => {
  let config: BastionConfig;
  let backend: Awaited<ReturnType<typeof openBackend>>;
  let clock: ManualClock;
  let registry: Registry;
  let http: HttpMetrics;
  let history: MetricHistory;

  beforeAll(async () => {
    config = await loadConfig({ env: {}, file: null });
  });
  beforeEach(async () => {
    if (skip) return;
    backend = await openBackend(engine);
    clock = new ManualClock(T0);
    registry = new Registry();
    http = new HttpMetrics(registry);
    history = make(config);
  });
  afterEach(async () => {
    if (skip) return;
    await backend.cleanup();
  });
  afterAll(() => {});

  /** What the host readers answer (CPU busy ratio). */
  const host = { cpu: 0 };

  function make(settings: BastionConfig): MetricHistory {
    return new MetricHistory({
      db: backend.database.db,
      registry,
      clock,
      logger,
      instanceId: 'instance-a',
      config: settings,
      httpDuration: http.duration,
      processStartedAt: T0 - 100_000,
      remoteCacheMs: 0,
      host: { cpu: () => host.cpu, eventLoop: () => 0 },
    });
  }
  async function sampleAt(seconds: number, target = history): Promise<void> {
    clock.advance(T0 + seconds * 1000 - clock.now());
    await target.sampleNow();
  }
  const value = (series: string, aggregation: Parameters<MetricHistory['evaluate']>[1], windowMs: number) =>
    history.evaluate(series, aggregation, windowMs);

  it.skipIf(skip)('counters: increases per sample, a reset counts its new value', async () => {
    const limited = new Counter({
      name: 'bastion_rate_limited_total',
      help: 'h',
      labelNames: ['scope'],
      registers: [registry],
    });
    limited.inc({ scope: 'ip' }, 3);
    await sampleAt(1); // +3
    limited.inc({ scope: 'route' }, 2);
    await sampleAt(2); // +2
    limited.reset();
    limited.inc({ scope: 'ip' }, 4);
    await sampleAt(3); // reset: +4
    await sampleAt(4); // +0
    expect(await value('http.rate_limited', 'sum', 4000)).toBe(9);
    expect(await value('http.rate_limited', 'rate', 4000)).toBe(2.25);
    expect(await value('http.rate_limited', 'avg', 4000)).toBe(2.25);
    expect(await value('http.rate_limited', 'max', 4000)).toBe(4);
    expect(await value('http.rate_limited', 'min', 4000)).toBe(0);
    expect(await value('http.rate_limited', 'last', 4000)).toBe(0);
    expect(await value('http.rate_limited', 'sum', 2000)).toBe(4);
    expect(await value('http.rate_limited', 'sum', 2500)).toBe(6);
    expect(await history.evaluate('http.rate_limited', 'sum', 2000, T0 + 2000)).toBe(5);
    expect(await value('http.rate_limited', 'p95', 4000)).toBeNull();
    expect(await value('http.rate_limited', 'ratio', 4000)).toBeNull();
    expect(await value('no.such.series', 'sum', 4000)).toBeNull();
  });

  it.skipIf(skip)(
    'HTTP: status classes, error and slow ratios, latency avg/p95/p99 from bucket increases',
    async () => {
      const route = http.forRoute('GET', '/x');
      for (let i = 0; i < 50; i += 1) route.observe(200, 0.02);
      await sampleAt(1);
      for (let i = 0; i < 40; i += 1) route.observe(200, 0.02);
      for (let i = 0; i < 5; i += 1) route.observe(200, 0.6);
      for (let i = 0; i < 5; i += 1) route.observe(500, 0.6);
      http.active.set(3);
      await sampleAt(2);
      expect(await value('http.requests', 'sum', 2000)).toBe(100);
      expect(await value('http.requests_2xx', 'sum', 2000)).toBe(95);
      expect(await value('http.requests_4xx', 'sum', 2000)).toBe(0);
      expect(await value('http.requests_5xx', 'sum', 2000)).toBe(5);
      expect(await value('http.errors', 'sum', 2000)).toBe(5);
      expect(await value('http.error_ratio', 'ratio', 2000)).toBe(0.05);
      expect(await value('http.error_ratio', 'sum', 2000)).toBe(5);
      expect(await value('http.error_ratio', 'max', 2000)).toBe(0.1);
      expect(await value('http.error_ratio', 'min', 2000)).toBe(0);
      // Threshold 500 ms: the bound at or over it is 0.5; the ten requests in (0.5, 0.75] are slow.
      expect(await value('http.slow_ratio', 'ratio', 2000)).toBe(0.1);
      expect(await value('http.latency_avg', 'avg', 2000)).toBeCloseTo(0.078, 12); // (90×0.02 + 10×0.6)/100
      // Rank 95 of 100: 90 in (0.01, 0.025], then 10 in (0.5, 0.75]: 0.5 + 0.25 × 5/10.
      expect(await value('http.latency_p95', 'p95', 2000)).toBeCloseTo(0.625, 12);
      expect(await value('http.latency_p99', 'p99', 2000)).toBeCloseTo(0.725, 12);
      // The second sample alone: 40 fast, 10 slow; rank 47.5 → 0.5 + 0.25 × 7.5/10.
      expect(await value('http.latency_p95', 'p95', 1000)).toBeCloseTo(0.6875, 12);
      expect(await value('http.error_ratio', 'ratio', 1000)).toBe(0.1);
      // Per-sample p95: 0.01 + 0.015 × 47.5/50 in the first sample, 0.6875 in the second.
      expect(await value('http.latency_p95', 'min', 2000)).toBeCloseTo(0.02425, 12);
      expect(await value('http.latency_p95', 'max', 2000)).toBeCloseTo(0.6875, 12);
      expect(await value('http.active', 'last', 2000)).toBe(3);
      expect(await value('http.latency_avg', 'sum', 2000)).toBeNull();
    },
  );

  it.skipIf(skip)(
    'gauges: avg, max, min, last; percentages; uptime; absent metrics have no data',
    async () => {
      const memory = new Gauge({
        name: 'host_memory_bytes',
        help: 'h',
        labelNames: ['state'],
        registers: [registry],
      });
      const disk = new Gauge({
        name: 'host_disk_bytes',
        help: 'h',
        labelNames: ['state'],
        registers: [registry],
      });
      memory.set({ state: 'total' }, 1000);
      memory.set({ state: 'used' }, 250);
      memory.set({ state: 'free' }, 750);
      disk.set({ state: 'total' }, 1000);
      disk.set({ state: 'used' }, 600);
      disk.set({ state: 'available' }, 300);
      for (const [second, ratio] of [
        [1, 0.5],
        [2, 0.7],
        [3, 0.9],
      ] as const) {
        host.cpu = ratio;
        await sampleAt(second);
      }
      expect(await value('system.cpu', 'avg', 3000)).toBeCloseTo(70, 9);
      expect(await value('system.cpu', 'max', 3000)).toBeCloseTo(90, 9);
      expect(await value('system.cpu', 'min', 3000)).toBe(50);
      expect(await value('system.cpu', 'last', 3000)).toBeCloseTo(90, 9);
      expect(await value('system.cpu', 'rate', 3000)).toBeNull();
      expect(await value('system.memory', 'last', 3000)).toBe(25);
      expect(await value('system.disk', 'last', 3000)).toBeCloseTo(200 / 3, 9); // 600 / (600 + 300)
      expect(await value('process.uptime', 'last', 3000)).toBe(103);
      expect(await value('db.pool_usage', 'last', 3000)).toBeNull();
      expect(await value('ws.disconnects', 'sum', 3000)).toBeNull();
      const disconnects = new Counter({
        name: 'bastion_ws_disconnects_total',
        help: 'h',
        labelNames: ['reason'],
        registers: [registry],
      });
      disconnects.inc({ reason: 'client' }, 2);
      disconnects.inc({ reason: 'server' });
      await sampleAt(4);
      expect(await value('ws.disconnects', 'sum', 1000)).toBe(3);
      expect(await history.current()).toMatchObject({
        'system.cpu': expect.closeTo(90, 9),
        'process.uptime': 104,
        'ws.disconnects': 3,
        'ws.active': null,
      });
    },
  );

  it.skipIf(skip)('windows crossing a minute boundary are exact from the samples', async () => {
    const limited = new Counter({ name: 'bastion_rate_limited_total', help: 'h', registers: [registry] });
    for (const [second, increase] of [
      [58, 1],
      [59, 2],
      [60, 4],
      [61, 8],
      [62, 16],
    ] as const) {
      limited.inc(increase);
      await sampleAt(second);
    }
    expect(await value('http.rate_limited', 'sum', 3000)).toBe(28);
    expect(await value('http.rate_limited', 'sum', 4000)).toBe(30);
    expect(await history.evaluate('http.rate_limited', 'sum', 2000, T0 + 61_000)).toBe(12);
  });

  it.skipIf(skip)('beyond the samples kept, minute rollups count by their midpoint', async () => {
    // Every 30 s, the ring keeps 31 samples (15 min): older ones come from the minute rollups.
    history = make({ ...config, metricHistory: { ...config.metricHistory, sampleIntervalMs: 30_000 } });
    const limited = new Counter({ name: 'bastion_rate_limited_total', help: 'h', registers: [registry] });
    for (let second = 30; second <= 1800; second += 30) {
      limited.inc();
      await sampleAt(second);
    }
    expect(await value('http.rate_limited', 'sum', 30 * 60_000)).toBe(60);
    expect(await value('http.rate_limited', 'sum', 10 * 60_000)).toBe(20); // from the ring: exact
    // (600 s, 1800 s] holds 40 samples; the minute [600 s, 660 s) has its midpoint inside, so
    // its sample at 600 s counts too: minute precision.
    expect(await value('http.rate_limited', 'sum', 20 * 60_000)).toBe(41);
    expect(await value('http.rate_limited', 'sum', 2 * 3_600_000)).toBe(60);
  });

  it.skipIf(skip)(
    'range(): a point per step over the step before it, null where nothing was sampled',
    async () => {
      const limited = new Counter({ name: 'bastion_rate_limited_total', help: 'h', registers: [registry] });
      for (const [second, increase] of [
        [5, 1],
        [15, 2],
        [25, 3],
        [45, 4],
      ] as const) {
        limited.inc(increase);
        await sampleAt(second);
      }
      const query = { from: T0 + 10_000, to: T0 + 50_000, stepMs: 10_000 };
      expect(await history.range('http.rate_limited', { ...query, aggregation: 'sum' })).toEqual([
        { t: T0 + 10_000, value: 1 },
        { t: T0 + 20_000, value: 2 },
        { t: T0 + 30_000, value: 3 },
        { t: T0 + 40_000, value: null },
        { t: T0 + 50_000, value: 4 },
      ]);
      const rates = await history.range('http.rate_limited', { ...query, aggregation: 'rate' });
      expect(rates.map((point) => point.value)).toEqual([0.1, 0.2, 0.3, null, 0.4]);
      await expect(history.range('nope', { ...query, aggregation: 'sum' })).rejects.toThrow(TypeError);
      await expect(
        history.range('http.rate_limited', { ...query, stepMs: 0, aggregation: 'sum' }),
      ).rejects.toThrow(TypeError);
    },
  );

  it.skipIf(skip)('security events, blocked requests and identity failures are counted', async () => {
    const events = new SecurityEvents({ db: backend.database.db, logger, clock, registry });
    const onAudit = identityFailureMetrics(registry);
    const ip = '203.0.113.9';
    const request = {
      ip,
      method: 'GET',
      routeOptions: { url: '/x' },
      id: 'req-1',
    } as unknown as FastifyRequest;
    const rule = { id: 'rule-1', cidr: '203.0.113.0/24', reason: 'test', source: 'api' } as IpRule;
    events.record({
      kind: 'attack',
      attackClass: 'sqli',
      severity: 'high',
      clientIp: ip,
      blocked: true,
      details: {},
    });
    events.record({
      kind: 'attack',
      attackClass: 'xss',
      severity: 'medium',
      clientIp: ip,
      blocked: false,
      details: {},
    });
    events.rateLimited(request);
    events.rateLimited(request); // a repeat: not stored again, still refused
    events.blocked(request, rule);
    events.blocked(request, rule);
    const failure = {
      category: 'authentication' as const,
      action: 'auth.login_failed',
      outcome: 'failure' as const,
      actor: { type: 'anonymous' as const, id: null },
      details: { email: 'a@example.com' },
      context: { ip, userAgent: null, requestId: null },
    };
    onAudit(failure);
    onAudit({ ...failure, action: 'auth.mfa_failed' });
    onAudit({ ...failure, action: 'auth.login', outcome: 'success' });
    await sampleAt(1);
    expect(await value('security.events', 'sum', 1000)).toBe(4); // two attacks, one of each repeat
    expect(await value('security.events.sqli', 'sum', 1000)).toBe(1);
    expect(await value('security.events.xss', 'sum', 1000)).toBe(1);
    expect(await value('security.events.cmdi', 'sum', 1000)).toBe(0);
    expect(await value('http.blocked', 'sum', 1000)).toBe(3); // the blocked attack, both denied requests
    expect(await value('auth.failures', 'sum', 1000)).toBe(2);
    const blocked = await registry.getSingleMetric('bastion_requests_blocked_total')?.get();
    const rateLimited = blocked?.values.find((sample) => sample.labels.kind === 'rate_limited');
    expect(rateLimited?.value).toBe(2);
    await events.close();
  });

  it.skipIf(skip)('lists every series and tells listeners after each sample', async () => {
    const names = history.list().map((series) => series.name);
    for (const rule of defaultRules([])) expect(names).toContain(rule.series);
    for (const name of [
      'http.slow_ratio',
      'http.latency_p99',
      'ws.connects',
      'alerts.firing',
      'db.operations',
    ])
      expect(names).toContain(name);
    expect(history.list().find((series) => series.name === 'http.error_ratio')).toMatchObject({
      kind: 'ratio',
      unit: 'ratio',
    });
    const heard: number[] = [];
    const stop = history.onSample((at) => heard.push(at));
    await sampleAt(1);
    await sampleAt(2);
    stop();
    await sampleAt(3);
    expect(heard).toEqual([T0 + 1000, T0 + 2000]);
  });
});
