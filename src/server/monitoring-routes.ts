import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { alertView } from '../alerting/alert-view.ts';
import type { Aggregation } from '../alerting/rules.ts';
import { UNMATCHED_ROUTE } from '../observability/http-metrics.ts';
import type { SeriesKind } from '../observability/metric-history/index.ts';
import { Closed } from './schemas.ts';
import type { Services } from './services.ts';

const HEALTH_JSON = 'application/health+json';

/** The series of each grouped metrics endpoint (by name prefix). */
const GROUPS = {
  application: ['http.', 'db.', 'ws.', 'alerts.'],
  system: ['system.', 'process.'],
  security: ['security.', 'auth.', 'http.rate_limited', 'http.blocked'],
} as const;

/** How `/metrics` and the dashboard sum each kind of series up. */
const SUMMARY: Record<SeriesKind, readonly [Aggregation, number]> = {
  counter: ['sum', 60_000],
  ratio: ['ratio', 300_000],
  latency: ['avg', 300_000],
  gauge: ['last', 60_000],
};

/** The RED series the dashboard charts. */
const RED_SERIES = [
  ['http.requests', 'rate'],
  ['http.error_ratio', 'ratio'],
  ['http.latency_avg', 'avg'],
  ['http.latency_p95', 'p95'],
] as const;

const RangeQuery = Closed({
  minutes: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 7 * 24 * 60, default: 60, description: 'How far back (default 60)' }),
  ),
  step_seconds: Type.Optional(
    Type.Integer({ minimum: 10, maximum: 86_400, description: 'Point spacing (default: about 60 points)' }),
  ),
});

const Point = Type.Object({ t: Type.String(), value: Type.Union([Type.Number(), Type.Null()]) });
const RangeView = Type.Object({
  from: Type.String(),
  to: Type.String(),
  step_seconds: Type.Integer(),
  series: Type.Record(Type.String(), Type.Array(Point)),
});

/** The aggregation a chart of `series` uses (counters as per-second rates, ratios as ratios…). */
function chartAggregation(name: string, kind: string): Aggregation {
  if (kind === 'counter') return 'rate';
  if (kind === 'ratio') return 'ratio';
  if (name.endsWith('_p95')) return 'p95';
  if (name.endsWith('_p99')) return 'p99';
  return 'avg';
}

/**
 * The monitoring API: minimal public health and status, and for `monitoring:read` the detailed
 * health, the current value of every series, their history by group (application, system,
 * security), and the dashboard — what the console's overview shows, in one call.
 */
export function registerMonitoringRoutes(
  app: FastifyInstance,
  services: Services,
  detailed: () => Promise<{ code: number; body: Record<string, unknown> }>,
): void {
  const { health, metricHistory, alerts, incidents, clock } = services;
  const tags = ['monitoring'];
  const base = '/api/v1/monitoring';

  // Public and minimal: a status word, nothing an attacker could use (no versions, no checks).
  app.get(
    `${base}/health`,
    { config: { auth: 'public' }, schema: { tags, hide: true } },
    async (_r, reply) => {
      const report = await health.report();
      return reply
        .code(report.status === 'fail' ? 503 : 200)
        .type(HEALTH_JSON)
        .header('cache-control', 'no-store')
        .send(JSON.stringify({ status: report.status }));
    },
  );

  app.get(
    `${base}/status`,
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Whether the service is up (public; nothing else)',
        response: { 200: Type.Object({ status: Type.String(), time: Type.String() }) },
      },
    },
    async (_request, reply) => {
      const report = await health.report();
      const status =
        report.status === 'pass' ? 'operational' : report.status === 'warn' ? 'degraded' : 'down';
      reply.header('cache-control', 'no-store');
      return { status, time: new Date(clock.now()).toISOString() };
    },
  );

  app.get(
    `${base}/health/detailed`,
    { config: { auth: 'monitoring:read' }, schema: { tags, summary: 'Every check with observed values' } },
    async (_request, reply) => {
      const { code, body } = await detailed();
      return reply
        .code(code)
        .type(HEALTH_JSON)
        .header('cache-control', 'no-store')
        .send(JSON.stringify(body));
    },
  );

  app.get(
    `${base}/metrics`,
    {
      config: { auth: 'monitoring:read' },
      schema: {
        tags,
        summary:
          'Every series now, across instances: counters summed over the last minute, ratios and latencies over the last 5 minutes, gauges as last sampled',
        response: {
          200: Type.Object({
            at: Type.String(),
            series: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()])),
          }),
        },
      },
    },
    async () => ({ at: new Date(clock.now()).toISOString(), series: await summary() }),
  );

  for (const [group, prefixes] of Object.entries(GROUPS)) {
    app.get(
      `${base}/metrics/${group}`,
      {
        config: { auth: 'monitoring:read' },
        schema: {
          tags,
          summary: `History of the ${group} series (counters as per-second rates)`,
          querystring: RangeQuery,
          response: { 200: RangeView },
        },
      },
      async (request) => {
        const query = request.query as { minutes?: number; step_seconds?: number };
        const names = metricHistory
          .list()
          .filter((series) => prefixes.some((prefix) => series.name.startsWith(prefix)))
          .map((series) => [series.name, chartAggregation(series.name, series.kind)] as const);
        return ranges(names, query.minutes ?? 60, query.step_seconds);
      },
    );
  }

  app.get(
    `${base}/dashboard`,
    {
      config: { auth: 'monitoring:read' },
      schema: { tags, summary: "What the console's overview shows, in one call" },
    },
    async () => {
      const [report, red, threat, firing, current] = await Promise.all([
        health.report(),
        ranges(RED_SERIES, 60),
        incidents.status(),
        alerts.activeAlerts(),
        summary(),
      ]);
      return {
        at: new Date(clock.now()).toISOString(),
        health: {
          status: report.status,
          checks: Object.fromEntries(
            Object.entries(report.checks).map(([name, entries]) => [
              name,
              entries.map((entry) => entry.status),
            ]),
          ),
        },
        red,
        current,
        threat,
        alerts: firing.map(alertView),
        ...topRoutes(services),
      };
    },
  );

  /** Each series now: what an operator reads at a glance (see the `/metrics` summary). */
  async function summary(): Promise<Record<string, number | null>> {
    const now = clock.now();
    const entries = await Promise.all(
      metricHistory.list().map(async (series) => {
        const [aggregation, windowMs] = SUMMARY[series.kind];
        const name = series.name;
        const chosen = series.kind === 'latency' ? chartAggregation(name, series.kind) : aggregation;
        return [name, await metricHistory.evaluate(name, chosen, windowMs, now)] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  async function ranges(
    names: ReadonlyArray<readonly [string, Aggregation]>,
    minutes: number,
    step?: number,
  ) {
    const to = clock.now();
    const from = to - minutes * 60_000;
    const stepMs = (step ?? Math.max(10, Math.round((minutes * 60) / 60))) * 1000;
    const series: Record<string, Array<{ t: string; value: number | null }>> = {};
    for (const [name, aggregation] of names) {
      const points = await metricHistory.range(name, { from, to, stepMs, aggregation });
      series[name] = points.map((point) => ({ t: new Date(point.t).toISOString(), value: point.value }));
    }
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      step_seconds: stepMs / 1000,
      series,
    };
  }
}

/**
 * The busiest routes and the routes with the most server errors, from this instance's request
 * histogram (counts since it started).
 */
function topRoutes(services: Services) {
  const byRoute = new Map<string, { route: string; method: string; requests: number; errors: number }>();
  for (const series of services.httpMetrics.duration.read().series) {
    const { method = '', route = '', status_code: status = '' } = series.labels;
    if (route === UNMATCHED_ROUTE) continue;
    const key = `${method} ${route}`;
    const entry = byRoute.get(key) ?? { route, method, requests: 0, errors: 0 };
    entry.requests += series.count;
    if (status.startsWith('5')) entry.errors += series.count;
    byRoute.set(key, entry);
  }
  const all = [...byRoute.values()];
  return {
    top_routes: [...all].sort((a, b) => b.requests - a.requests).slice(0, 10),
    top_errors: all
      .filter((entry) => entry.errors > 0)
      .sort((a, b) => b.errors - a.errors)
      .slice(0, 10),
  };
}
