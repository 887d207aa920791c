import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { type Logger, pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPostgresSchema } from '../../../test/support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from '../../../test/support/services.ts';
import { loadConfig } from '../../config/load-config.ts';
import type { BastionConfig } from '../../config/schema.ts';
import { ManualClock } from '../../core/clock.ts';
import { type Database, openDatabase, type QueryEvent } from '../../storage/database.ts';
import { migrateUp } from '../../storage/migrator.ts';
import { HttpMetrics } from '../http-metrics.ts';
import { MetricHistory } from './metric-history.ts';
import { emptyRollup } from './rollup.ts';
import { RollupStore } from './rollup-store.ts';

const pgUp = await postgresAvailable();
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Backend {
  open(onQuery?: (event: QueryEvent) => void): Database;
  cleanup(): Promise<void>;
}

async function makeBackend(engine: 'sqlite' | 'postgres'): Promise<Backend> {
  const opened: Database[] = [];
  let open: (onQuery?: (event: QueryEvent) => void) => Database;
  let dir: string | null = null;
  if (engine === 'postgres') {
    const { schema } = await createPostgresSchema();
    open = (onQuery) => openDatabase({ url: DATABASE_URL_TEST, schema, poolMax: 4, onQuery });
  } else {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bastion-metric-history-'));
    const file = path.join(dir, 'bastion.db');
    // Two connections in one process: a writer waiting on the other blocks the thread that would
    // commit it, so waiting long only delays the failure the test expects from one of them.
    open = (onQuery) => openDatabase({ url: `sqlite:${file}`, onQuery, busyTimeoutMs: 200 });
  }
  const tracked = (onQuery?: (event: QueryEvent) => void) => {
    const database = open(onQuery);
    opened.push(database);
    return database;
  };
  await migrateUp(tracked());
  return {
    open: tracked,
    async cleanup() {
      await Promise.allSettled(opened.map((database) => database.close()));
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

function captureLogs(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe.each([
  { engine: 'sqlite' as const, skip: false },
  { engine: 'postgres' as const, skip: !pgUp },
])('MetricHistory storage on $engine', ({ engine, skip }) => {
  let config: BastionConfig;
  let backend: Backend;
  let clock: ManualClock;

  beforeAll(async () => {
    config = await loadConfig({ env: {}, file: null });
  });
  beforeEach(async () => {
    if (skip) return;
    backend = await makeBackend(engine);
    clock = new ManualClock(T0);
  });
  afterEach(async () => {
    if (!skip) await backend.cleanup();
  });

  /** An instance with its own registry (counters, gauges, request histogram). */
  function instance(
    database: Database,
    instanceId: string,
    options: { startedAt?: number; logger?: Logger } = {},
  ) {
    const registry = new Registry();
    const http = new HttpMetrics(registry);
    const host = { cpu: 0 };
    const history = new MetricHistory({
      db: database.db,
      registry,
      clock,
      logger: options.logger ?? pino({ level: 'silent' }),
      instanceId,
      config: { ...config, metricHistory: { ...config.metricHistory, hourlyRetentionDays: 30 } },
      httpDuration: http.duration,
      processStartedAt: options.startedAt ?? T0,
      remoteCacheMs: 0,
      host: { cpu: () => host.cpu, eventLoop: () => 0 },
    });
    const limited = new Counter({ name: 'bastion_rate_limited_total', help: 'h', registers: [registry] });
    const cpu = {
      set(ratio: number) {
        host.cpu = ratio;
      },
    };
    return { history, http, limited, cpu, route: http.forRoute('GET', '/x') };
  }
  const moveTo = (ms: number) => clock.advance(T0 + ms - clock.now());
  const rowsOf = (database: Database, series: string) =>
    database.db
      .selectFrom('metric_rollups')
      .selectAll()
      .where('series', '=', series)
      .orderBy('resolution', 'desc')
      .orderBy('bucket_start')
      .orderBy('instance_id')
      .execute();

  it.skipIf(skip)(
    'upserts the current minute at each flush and finalises it as the minute ends',
    async () => {
      const statements: string[] = [];
      const database = backend.open((event) => statements.push(event.sql));
      const a = instance(database, 'instance-a');
      const inserts = () =>
        statements.filter((text) => text.startsWith('insert into "metric_rollups"')).length;
      a.limited.inc(2);
      moveTo(5_000);
      await a.history.sampleNow();
      await a.history.flush();
      expect(inserts()).toBe(1); // every series' row in one statement
      expect(await rowsOf(database, 'http.rate_limited')).toMatchObject([
        { resolution: '1m', bucket_start: T0, instance_id: 'instance-a', sample_count: 1, value_sum: 2 },
      ]);
      a.limited.inc(3);
      moveTo(15_000);
      await a.history.sampleNow();
      await a.history.flush();
      expect(await rowsOf(database, 'http.rate_limited')).toMatchObject([
        { bucket_start: T0, sample_count: 2, value_sum: 5, value_min: 2, value_max: 3, value_last: 3 },
      ]);
      a.limited.inc(1);
      a.route.observe(200, 0.02);
      moveTo(65_000);
      await a.history.sampleNow();
      await a.history.flush();
      expect(inserts()).toBe(3);
      expect(await rowsOf(database, 'http.rate_limited')).toMatchObject([
        { bucket_start: T0, sample_count: 2, value_sum: 5 },
        { bucket_start: T0 + 60_000, sample_count: 1, value_sum: 1 },
      ]);
      const [, latency] = await rowsOf(database, 'http.latency_p95');
      expect(latency).toMatchObject({ hist_count: 1, hist_sum: 0.02 });
      expect(JSON.parse(latency?.buckets ?? '[]')).toEqual([
        0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      ]);
      await a.history.flush();
      expect(inserts()).toBe(3); // nothing new, nothing written
      a.limited.inc(4);
      moveTo(70_000);
      await a.history.sampleNow();
      await a.history.close(); // close writes the current minute
      expect((await rowsOf(database, 'http.rate_limited'))[1]).toMatchObject({
        sample_count: 2,
        value_sum: 5,
      });
    },
  );

  it.skipIf(skip)(
    'the timer samples each interval, stores the minute every 10 s and as soon as it ends',
    async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      try {
        const database = backend.open();
        const a = instance(database, 'instance-a');
        const counts = async () => (await rowsOf(database, 'process.uptime')).map((row) => row.sample_count);
        const tick = async () => {
          clock.advance(1000);
          await vi.advanceTimersByTimeAsync(1000);
          await a.history.idle();
        };
        await a.history.start(); // samples at once
        for (let second = 1; second <= 9; second += 1) await tick();
        expect(await counts()).toEqual([]);
        await tick(); // 10 s after the start
        expect(await counts()).toEqual([11]);
        for (let second = 11; second <= 59; second += 1) await tick();
        expect(await counts()).toEqual([51]); // last stored at 50 s
        await tick(); // the minute ended: stored whole at once, with the new one begun
        expect(await counts()).toEqual([60, 1]);
        await a.history.close();
        await vi.advanceTimersByTimeAsync(5000);
        expect(await counts()).toEqual([60, 1]); // no sampling after close
      } finally {
        vi.useRealTimers();
      }
    },
  );

  it.skipIf(skip)('two instances on one database are aggregated together', async () => {
    const database = backend.open();
    const a = instance(database, 'instance-a', { startedAt: T0 - 1_000_000 });
    const b = instance(database, 'instance-b', { startedAt: T0 - 50_000 });
    a.limited.inc(3);
    b.limited.inc(5);
    a.cpu.set(0.4);
    b.cpu.set(0.8);
    a.http.active.set(2);
    b.http.active.set(3);
    for (let i = 0; i < 9; i += 1) a.route.observe(200, 0.02);
    a.route.observe(500, 0.02);
    for (let i = 0; i < 7; i += 1) b.route.observe(200, 0.6);
    for (let i = 0; i < 3; i += 1) b.route.observe(500, 0.6);
    moveTo(10_000);
    await a.history.sampleNow();
    await b.history.sampleNow();
    moveTo(40_000);
    expect(await a.history.evaluate('http.rate_limited', 'sum', 60_000)).toBe(3); // b has not flushed
    await a.history.flush();
    await b.history.flush();
    for (const { history } of [a, b]) {
      const at = (series: string, aggregation: Parameters<MetricHistory['evaluate']>[1]) =>
        history.evaluate(series, aggregation, 60_000);
      expect(await at('http.rate_limited', 'sum')).toBe(8);
      expect(await at('http.requests', 'sum')).toBe(20);
      expect(await at('http.error_ratio', 'ratio')).toBe(0.2); // (1 + 3) / 20
      // Merged buckets: 10 in (0.01, 0.025], 10 in (0.5, 0.75]; rank 19 → 0.5 + 0.25 × 9/10.
      expect(await at('http.latency_p95', 'p95')).toBeCloseTo(0.725, 12);
      expect(await at('http.latency_avg', 'avg')).toBeCloseTo(0.31, 12); // (10×0.02 + 10×0.6) / 20
      expect(await at('system.cpu', 'avg')).toBeCloseTo(60, 9);
      expect(await at('system.cpu', 'max')).toBeCloseTo(80, 9);
      expect(await at('system.cpu', 'min')).toBeCloseTo(40, 9);
      expect(await at('http.active', 'last')).toBe(5); // in flight: summed across instances
      expect(await at('process.uptime', 'last')).toBe(60); // the youngest instance
    }
    expect(await a.history.current()).toMatchObject({ 'http.active': 5, 'process.uptime': 60 });
  });

  it.skipIf(skip)(
    'compaction folds old minutes into hours once, even run twice at once, and expires hours',
    async () => {
      const a = instance(backend.open(), 'instance-a');
      const b = instance(backend.open(), 'instance-b');
      for (const [second, increase] of [
        [10, 1],
        [70, 2],
        [130, 3],
      ] as const) {
        a.limited.inc(increase);
        b.limited.inc(increase * 10);
        a.route.observe(200, 0.02);
        moveTo(second * 1000);
        await a.history.sampleNow();
        await b.history.sampleNow();
      }
      a.limited.inc(100);
      moveTo(HOUR + 10_000);
      await a.history.sampleNow();
      await Promise.all([a.history.flush(), b.history.flush()]);
      moveTo(8 * DAY);
      await Promise.all([a.history.compact(), b.history.compact()]);
      const database = backend.open();
      const rows = await rowsOf(database, 'http.rate_limited');
      expect(
        rows.map((row) => [
          row.resolution,
          row.bucket_start,
          row.instance_id,
          row.sample_count,
          row.value_sum,
        ]),
      ).toEqual([
        ['1h', T0, 'instance-a', 3, 6],
        ['1h', T0, 'instance-b', 3, 60],
        ['1h', T0 + HOUR, 'instance-a', 1, 100],
      ]);
      expect(rows[0]).toMatchObject({ value_min: 1, value_max: 3, value_last: 3 });
      const [latency] = await rowsOf(database, 'http.latency_p99');
      expect(latency).toMatchObject({ resolution: '1h', hist_count: 3 });
      expect(JSON.parse(latency?.buckets ?? '[]')[4]).toBe(3);
      // A fresh instance reads the hours from the database.
      const reader = instance(database, 'instance-c').history;
      const hourly = { from: T0 + HOUR, to: T0 + 2 * HOUR, stepMs: HOUR, aggregation: 'sum' as const };
      expect(await reader.range('http.rate_limited', hourly)).toEqual([
        { t: T0 + HOUR, value: 66 },
        { t: T0 + 2 * HOUR, value: 100 },
      ]);
      // A minute that arrives late is merged into its hour, not written over it.
      const late = emptyRollup(0);
      Object.assign(late, { count: 1, sum: 7, min: 7, max: 7, last: 7, lastAt: T0 + 1_800_000 });
      await new RollupStore(database.db).upsert(
        [
          {
            series: 'http.rate_limited',
            resolution: '1m',
            start: T0 + 1_800_000,
            instanceId: 'instance-a',
            rollup: late,
          },
        ],
        clock.now(),
      );
      await a.history.compact();
      expect((await rowsOf(database, 'http.rate_limited'))[0]).toMatchObject({
        resolution: '1h',
        sample_count: 4,
        value_sum: 13,
        value_max: 7,
      });
      moveTo(31 * DAY); // hourly rows are kept 30 days here
      await b.history.compact();
      expect(await rowsOf(database, 'http.rate_limited')).toEqual([]);
    },
  );

  it.skipIf(skip)('a database outage keeps the minutes in memory and stores them once it ends', async () => {
    const database = backend.open();
    const { logger, lines } = captureLogs();
    const a = instance(database, 'instance-a', { logger });
    a.limited.inc(2);
    moveTo(10_000);
    await a.history.sampleNow();
    await sql`alter table metric_rollups rename to metric_rollups_away`.execute(database.db);
    await a.history.flush();
    a.limited.inc(3);
    moveTo(70_000);
    await a.history.sampleNow();
    await a.history.flush();
    await a.history.flush();
    expect(await a.history.evaluate('http.rate_limited', 'sum', 120_000)).toBe(5);
    const failures = lines.filter((line) => line.event === 'metric_history_store_failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]?.level).toBe(40);
    expect(lines.filter((line) => line.event === 'metric_history_read_failed')).toHaveLength(1);
    await sql`alter table metric_rollups_away rename to metric_rollups`.execute(database.db);
    await a.history.flush();
    expect(
      (await rowsOf(database, 'http.rate_limited')).map((row) => [row.bucket_start, row.value_sum]),
    ).toEqual([
      [T0, 2],
      [T0 + 60_000, 3],
    ]);
    expect(lines.filter((line) => line.event === 'metric_history_store_recovered')).toHaveLength(1);
  });

  it.skipIf(skip || engine !== 'postgres')(
    'PostgreSQL unreachable: sampling and evaluation go on',
    async () => {
      const dead = openDatabase({ url: 'postgres://postgres@127.0.0.1:1/test' });
      const { logger, lines } = captureLogs();
      const a = instance(dead, 'instance-a', { logger });
      try {
        a.limited.inc(4);
        moveTo(5_000);
        await a.history.sampleNow();
        await a.history.flush();
        expect(await a.history.evaluate('http.rate_limited', 'sum', 60_000)).toBe(4);
        expect(await a.history.current()).toMatchObject({ 'http.rate_limited': 4 });
        await a.history.close();
        expect(lines.filter((line) => line.event === 'metric_history_store_failed')).toHaveLength(1);
      } finally {
        await dead.close();
      }
    },
  );
});
