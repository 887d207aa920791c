import { ATTACK_CLASSES } from '../../protection/detection/types.ts';

/** A metric sample's labels, as prom-client reads them. */
export type Labels = Readonly<Partial<Record<string, string | number>>>;

/** The HTTP request-duration histogram summed over every label set, since the process started. */
export interface HttpTotals {
  count: number;
  /** Seconds. */
  sum: number;
  /** Per bucket (not cumulative), the last one +Inf. */
  buckets: Float64Array;
  /** Requests by status class: index 1 for 1xx … 5 for 5xx. */
  byClass: Float64Array;
}

/** What one sample reads from the live process. */
export interface Readings {
  /**
   * The sum of a metric's samples whose labels `keep` accepts (default: all), or of its samples
   * named `sampleName` (a histogram's `_count`); null when the metric is not registered.
   */
  total(metric: string, keep?: (labels: Labels) => boolean, sampleName?: string): number | null;
  readonly http: HttpTotals;
  readonly uptimeSeconds: number;
  /** Host CPU busy since the previous sample (0–1), with the history's own baseline. */
  readonly cpu: number;
  /** Event-loop utilisation since the previous sample (0–1), with the history's own baseline. */
  readonly eventLoop: number;
}

/**
 * How a series is sampled and reduced: `counter` stores the increase since the previous sample
 * (a counter that went down was reset: its new value is the increase); `gauge` the reading;
 * `ratio` the increases of a numerator and a denominator counter; `latency` the request-duration
 * histogram's bucket increases.
 */
export type SeriesKind = 'counter' | 'gauge' | 'ratio' | 'latency';

/** How instances combine for `last` (and, for gauges, `avg`): total, mean, smallest or largest. */
export type Across = 'sum' | 'avg' | 'min' | 'max';

interface SeriesInfo {
  name: string;
  unit: string;
  description: string;
  across: Across;
  /** Registry metrics this series reads (each is read once per sample, whatever reads it). */
  metrics: readonly string[];
}

/** A cumulative counter, sampled as increases. */
export interface CounterSeries extends SeriesInfo {
  kind: 'counter';
  read(readings: Readings): number | null;
}

/** A reading taken as is. */
export interface GaugeSeries extends SeriesInfo {
  kind: 'gauge';
  read(readings: Readings): number | null;
}

/** Bad over all, from two cumulative counters. */
export interface RatioSeries extends SeriesInfo {
  kind: 'ratio';
  numerator(readings: Readings): number | null;
  denominator(readings: Readings): number | null;
}

/** A statistic of the request-duration histogram. */
export interface LatencySeries extends SeriesInfo {
  kind: 'latency';
  statistic: 'avg' | 'p95' | 'p99';
}

export type SeriesDefinition = CounterSeries | GaugeSeries | RatioSeries | LatencySeries;

const sum = (values: ArrayLike<number>, from = 0): number => {
  let total = 0;
  for (let i = from; i < values.length; i += 1) total += values[i] as number;
  return total;
};
const percent = (part: number | null, whole: number | null): number | null =>
  part === null || whole === null || whole <= 0 ? null : (100 * part) / whole;

function counter(
  name: string,
  description: string,
  unit: string,
  metric: string | null,
  read: CounterSeries['read'],
): CounterSeries {
  return { name, unit, description, kind: 'counter', across: 'sum', metrics: metric ? [metric] : [], read };
}

function gauge(
  name: string,
  description: string,
  unit: string,
  across: Across,
  metrics: string[],
  read: GaugeSeries['read'],
): GaugeSeries {
  return { name, unit, description, kind: 'gauge', across, metrics, read };
}

function latency(statistic: LatencySeries['statistic'], description: string): LatencySeries {
  return {
    name: `http.latency_${statistic}`,
    unit: 'seconds',
    description,
    kind: 'latency',
    across: 'max',
    metrics: [],
    statistic,
  };
}

/**
 * Every series, in one table. `bounds` are the request-duration histogram's bucket bounds
 * (seconds); `latencyThresholdSeconds` makes `http.slow_ratio` count requests above the first
 * bound at or over it (above the last bound when the threshold is past every bound). Per attack
 * class there is a `security.events.<class>` series for every class the detector knows (always
 * listed, so rules can name any class before it first occurs).
 */
export function seriesDefinitions(options: {
  bounds: ArrayLike<number>;
  latencyThresholdSeconds: number;
}): SeriesDefinition[] {
  // Past every bound, only the +Inf bucket is known to be slower.
  let slowFrom = options.bounds.length - 1;
  for (let i = options.bounds.length - 1; i >= 0; i -= 1) {
    if ((options.bounds[i] as number) >= options.latencyThresholdSeconds) slowFrom = i;
  }
  const byClass = (digit: number) => (r: Readings) => r.http.byClass[digit] as number;
  const securityEvents = 'bastion_security_events_total';
  return [
    counter('http.requests', 'HTTP requests answered', 'requests', null, (r) => r.http.count),
    ...[2, 3, 4, 5].map((digit) =>
      counter(
        `http.requests_${digit}xx`,
        `HTTP requests answered with a ${digit}xx status`,
        'requests',
        null,
        byClass(digit),
      ),
    ),
    counter('http.errors', 'HTTP requests answered with a 5xx status', 'requests', null, byClass(5)),
    {
      name: 'http.error_ratio',
      unit: 'ratio',
      description: 'Share of HTTP requests answered with a 5xx status (0–1)',
      kind: 'ratio',
      across: 'avg',
      metrics: [],
      numerator: byClass(5),
      denominator: (r) => r.http.count,
    },
    {
      name: 'http.slow_ratio',
      unit: 'ratio',
      description: `Share of HTTP requests slower than the latency objective's threshold (0–1)`,
      kind: 'ratio',
      across: 'avg',
      metrics: [],
      numerator: (r) => sum(r.http.buckets, slowFrom + 1),
      denominator: (r) => r.http.count,
    },
    latency('avg', 'Mean HTTP request duration'),
    latency('p95', '95th percentile of HTTP request duration'),
    latency('p99', '99th percentile of HTTP request duration'),
    gauge('http.active', 'HTTP requests in flight', 'requests', 'sum', ['http_server_active_requests'], (r) =>
      r.total('http_server_active_requests'),
    ),
    counter(
      'http.rate_limited',
      'Requests refused by a rate limit',
      'requests',
      'bastion_rate_limited_total',
      (r) => r.total('bastion_rate_limited_total'),
    ),
    counter(
      'http.blocked',
      'Requests refused by protection: denied addresses, bans, attacks (rate limits excluded)',
      'requests',
      'bastion_requests_blocked_total',
      (r) => r.total('bastion_requests_blocked_total', (labels) => labels.kind !== 'rate_limited'),
    ),
    // Read with the history's own baselines: the Prometheus gauges measure since their last scrape.
    gauge('system.cpu', 'Host CPU busy', 'percent', 'avg', [], (r) => r.cpu * 100),
    gauge('system.memory', 'Host memory in use', 'percent', 'avg', ['host_memory_bytes'], (r) =>
      percent(
        r.total('host_memory_bytes', (l) => l.state === 'used'),
        r.total('host_memory_bytes', (l) => l.state === 'total'),
      ),
    ),
    // Like df: used over what users may fill (used + available), not over the raw size.
    gauge('system.disk', 'Data directory filesystem in use', 'percent', 'max', ['host_disk_bytes'], (r) =>
      percent(
        r.total('host_disk_bytes', (l) => l.state === 'used'),
        r.total('host_disk_bytes', (l) => l.state === 'used' || l.state === 'available'),
      ),
    ),
    gauge('system.event_loop', 'Event-loop utilisation (0–1)', 'ratio', 'max', [], (r) => r.eventLoop),
    gauge(
      'db.pool_usage',
      'PostgreSQL pool connections in use (none on SQLite)',
      'percent',
      'max',
      ['db_client_connections', 'db_client_connections_max'],
      (r) =>
        percent(
          r.total('db_client_connections', (l) => l.state === 'used'),
          r.total('db_client_connections_max'),
        ),
    ),
    counter(
      'db.operations',
      'Database operations',
      'operations',
      'db_client_operation_duration_seconds',
      (r) =>
        r.total(
          'db_client_operation_duration_seconds',
          undefined,
          'db_client_operation_duration_seconds_count',
        ),
    ),
    counter(
      'db.slow_queries',
      'Database operations over the slow-query threshold',
      'operations',
      'db_client_slow_queries_total',
      (r) => r.total('db_client_slow_queries_total'),
    ),
    counter('security.events', 'Security events recorded (every kind)', 'events', securityEvents, (r) =>
      r.total(securityEvents),
    ),
    ...ATTACK_CLASSES.map((attackClass) =>
      counter(
        `security.events.${attackClass}`,
        `Attacks detected of class ${attackClass}`,
        'events',
        securityEvents,
        (r) => r.total(securityEvents, (labels) => labels.attack_class === attackClass),
      ),
    ),
    counter(
      'auth.failures',
      'Failed sign-ins and token misuse',
      'events',
      'bastion_identity_failures_total',
      (r) => r.total('bastion_identity_failures_total'),
    ),
    counter('ws.connects', 'WebSocket connections opened', 'connections', 'bastion_ws_connects_total', (r) =>
      r.total('bastion_ws_connects_total'),
    ),
    counter(
      'ws.disconnects',
      'WebSocket connections closed (every reason)',
      'connections',
      'bastion_ws_disconnects_total',
      (r) => r.total('bastion_ws_disconnects_total'),
    ),
    gauge(
      'ws.active',
      'WebSocket connections open',
      'connections',
      'sum',
      ['bastion_ws_active_connections'],
      (r) => r.total('bastion_ws_active_connections'),
    ),
    gauge(
      'alerts.firing',
      'Alerts firing (as the evaluating instance sees them)',
      'alerts',
      'max',
      ['bastion_alerts_firing'],
      (r) => r.total('bastion_alerts_firing'),
    ),
    // The smallest across instances, so a restart anywhere shows.
    gauge(
      'process.uptime',
      'Seconds since the process started',
      'seconds',
      'min',
      [],
      (r) => r.uptimeSeconds,
    ),
  ];
}
