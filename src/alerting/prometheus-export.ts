import { Registry } from 'prom-client';
import { Document } from 'yaml';
import { HttpMetrics } from '../observability/http-metrics.ts';
import { ATTACK_CLASSES } from '../protection/detection/types.ts';
import { formatDuration, parseDuration } from './durations.ts';
import { type Aggregation, type AlertRuleInput, breaches } from './rules.ts';
import { formatAlertValue, LABEL, PLACEHOLDER } from './templates.ts';

/** What a PromQL builder may use: selectors scoped by the export's matchers, and the slow bucket. */
export interface PromqlScope {
  /** `metric{matchers}`, with the export's matchers added. */
  select(metric: string, matchers?: string): string;
  /** `le` matcher of the request-duration bucket that `http.slow_ratio` counts requests above. */
  slowBucket: string;
}

/** One Bastion series in PromQL over Bastion's `/metrics`. */
export interface PromqlSeries {
  /** PromQL per aggregation with a faithful translation, for a window such as `5m`. */
  expressions: Partial<Record<Aggregation, (window: string, scope: PromqlScope) => string>>;
  /**
   * True for counters: Bastion counts 0 where Prometheus has no series yet (nothing happened),
   * so rules that breach at 0 get the gap filled while Bastion is scraped.
   */
  absentIsZero: boolean;
}

/** How instances combine, as Bastion's series definitions say (metric-history `Across`). */
type Across = 'sum' | 'avg' | 'min' | 'max';

const REQUESTS = 'http_server_request_duration_seconds';
const BARE_SELECTOR = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$/;
const MATCHERS =
  /^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*(,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$/;

// Bastion's series sample counters as increases per sample: a window's `sum` is the increase
// over the window and `rate` its per-second rate, for the whole cluster.
function counter(metric: string, matchers?: string): PromqlSeries {
  return {
    absentIsZero: true,
    expressions: {
      sum: (w, s) => `sum(increase(${s.select(metric, matchers)}[${w}]))`,
      rate: (w, s) => `sum(rate(${s.select(metric, matchers)}[${w}]))`,
    },
  };
}

// Bad over all for the whole window (not a mean of per-sample ratios); no traffic is no data.
function ratio(numerator: (w: string, s: PromqlScope) => string): PromqlSeries {
  return {
    absentIsZero: false,
    expressions: {
      ratio: (w, s) => `${numerator(w, s)} / (sum(rate(${s.select(`${REQUESTS}_count`)}[${w}])) > 0)`,
    },
  };
}

function quantile(q: string, aggregation: 'p95' | 'p99'): PromqlSeries {
  return {
    absentIsZero: false,
    expressions: {
      [aggregation]: (w: string, s: PromqlScope) =>
        `histogram_quantile(${q}, sum by (le) (rate(${s.select(`${REQUESTS}_bucket`)}[${w}])))`,
    },
  };
}

/**
 * A gauge read per instance (`value`, an instant expression), reduced over the window per
 * instance, then combined across instances as Bastion does: `avg` and `last` by `across`; `max`
 * and `min` as the extreme of any instance (not defined for gauges summed across instances).
 * `factor` converts units (a ratio to Bastion's percent).
 */
function gauge(across: Across, value: (s: PromqlScope) => string, factor = 1): PromqlSeries {
  const scale = factor === 1 ? '' : `${factor} * `;
  const overTime = (fn: string) => (w: string, s: PromqlScope) => {
    const instant = value(s);
    const range = BARE_SELECTOR.test(instant) ? `${instant}[${w}]` : `(${instant})[${w}:]`;
    return `${scale}${fn === 'avg' || fn === 'last' ? across : fn}(${fn}_over_time(${range}))`;
  };
  const expressions: PromqlSeries['expressions'] = { avg: overTime('avg'), last: overTime('last') };
  if (across !== 'sum') {
    expressions.max = overTime('max');
    expressions.min = overTime('min');
  }
  return { absentIsZero: false, expressions };
}

// A percentage per instance: `part` of a gauge over `whole` (another series of the same instance).
const percentOf =
  (metric: string, part: string, whole: (s: PromqlScope) => string) =>
  (s: PromqlScope): string =>
    `100 * ${s.select(metric, `state="${part}"`)} / ignoring(state) ${whole(s)}`;

/**
 * Every Bastion series with a PromQL translation, and the aggregations it has one for (the
 * series are metric-history's `series-definitions.ts`; units as there: system and pool series
 * are percentages 0–100, latencies seconds, ratios 0–1, `rate` per second). A pair missing here
 * has no faithful PromQL and is reported, never guessed.
 */
export const PROMQL_SERIES: Readonly<Record<string, PromqlSeries>> = {
  'http.requests': counter(`${REQUESTS}_count`),
  'http.requests_2xx': counter(`${REQUESTS}_count`, 'status_code=~"2.."'),
  'http.requests_3xx': counter(`${REQUESTS}_count`, 'status_code=~"3.."'),
  'http.requests_4xx': counter(`${REQUESTS}_count`, 'status_code=~"4.."'),
  'http.requests_5xx': counter(`${REQUESTS}_count`, 'status_code=~"5.."'),
  'http.errors': counter(`${REQUESTS}_count`, 'status_code=~"5.."'),
  'http.error_ratio': ratio(
    (w, s) => `(sum(rate(${s.select(`${REQUESTS}_count`, 'status_code=~"5.."')}[${w}])) or vector(0))`,
  ),
  'http.slow_ratio': ratio(
    (w, s) =>
      `(sum(rate(${s.select(`${REQUESTS}_count`)}[${w}])) - sum(rate(${s.select(`${REQUESTS}_bucket`, s.slowBucket)}[${w}])))`,
  ),
  'http.latency_avg': {
    absentIsZero: false,
    expressions: {
      avg: (w, s) =>
        `sum(rate(${s.select(`${REQUESTS}_sum`)}[${w}])) / (sum(rate(${s.select(`${REQUESTS}_count`)}[${w}])) > 0)`,
    },
  },
  'http.latency_p95': quantile('0.95', 'p95'),
  'http.latency_p99': quantile('0.99', 'p99'),
  'http.active': gauge('sum', (s) => s.select('http_server_active_requests')),
  'http.rate_limited': counter('bastion_rate_limited_total'),
  'http.blocked': counter('bastion_requests_blocked_total', 'kind!="rate_limited"'),
  'system.cpu': gauge('avg', (s) => s.select('host_cpu_utilization_ratio'), 100),
  'system.memory': gauge(
    'avg',
    percentOf('host_memory_bytes', 'used', (s) => s.select('host_memory_bytes', 'state="total"')),
  ),
  // Like df: used over what users may fill (used + available).
  'system.disk': gauge(
    'max',
    percentOf(
      'host_disk_bytes',
      'used',
      (s) =>
        `(${s.select('host_disk_bytes', 'state="used"')} + ignoring(state) ${s.select('host_disk_bytes', 'state="available"')})`,
    ),
  ),
  'system.event_loop': gauge('max', (s) => s.select('nodejs_eventloop_utilization_ratio')),
  'db.pool_usage': gauge(
    'max',
    percentOf('db_client_connections', 'used', (s) => s.select('db_client_connections_max')),
  ),
  'db.operations': counter('db_client_operation_duration_seconds_count'),
  'db.slow_queries': counter('db_client_slow_queries_total'),
  'security.events': counter('bastion_security_events_total'),
  ...Object.fromEntries(
    ATTACK_CLASSES.map((attackClass) => [
      `security.events.${attackClass}`,
      counter('bastion_security_events_total', `attack_class="${attackClass}"`),
    ]),
  ),
  'auth.failures': counter('bastion_identity_failures_total'),
  'ws.connects': counter('bastion_ws_connects_total'),
  'ws.disconnects': counter('bastion_ws_disconnects_total'),
  'ws.active': gauge('sum', (s) => s.select('bastion_ws_active_connections')),
  'alerts.firing': gauge('max', (s) => `sum without (severity) (${s.select('bastion_alerts_firing')})`),
  // The youngest instance, so a restart anywhere shows.
  'process.uptime': gauge('min', (s) => `time() - ${s.select('process_start_time_seconds')}`),
};

/** Options of {@link exportPrometheusRules}. */
export interface PrometheusExportOptions {
  /** Label matchers added to every selector, e.g. `job="bastion"` (default: none). */
  matchers?: string;
  /** The latency objective's threshold, seconds (`alerts.slo.latencyThresholdMs`; default 0.5). */
  latencyThresholdSeconds?: number;
  /** Upper bounds of the request-duration histogram (default: Bastion's own). */
  latencyBounds?: ArrayLike<number>;
}

/** An alerting rule of a Prometheus rule file. */
export interface PrometheusAlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A Bastion rule left out of the export, and why. */
export interface SkippedRule {
  name: string;
  reason: string;
}

/** Bastion rules as Prometheus alerting rules, and those that have no faithful translation. */
export interface PrometheusTranslation {
  rules: PrometheusAlertingRule[];
  skipped: SkippedRule[];
}

/** Translates Bastion alert rules to Prometheus alerting rules; rules without faithful PromQL are skipped with a reason. */
export function translateRules(
  rules: readonly AlertRuleInput[],
  options: PrometheusExportOptions = {},
): PrometheusTranslation {
  const scope = promqlScope(options);
  const translation: PrometheusTranslation = { rules: [], skipped: [] };
  for (const rule of rules) {
    if (!rule.enabled) {
      translation.skipped.push({ name: rule.name, reason: 'disabled' });
      continue;
    }
    const series = PROMQL_SERIES[rule.series];
    const aggregation = rule.aggregation as Aggregation;
    const build = series?.expressions[aggregation];
    if (!series || !build) {
      const supported = Object.keys(series?.expressions ?? {});
      translation.skipped.push({
        name: rule.name,
        reason: series
          ? `series "${rule.series}" with aggregation "${aggregation}" has no faithful PromQL (supported: ${supported.join(', ')})`
          : `series "${rule.series}" has no PromQL translation`,
      });
      continue;
    }
    const condition = (window: string) => {
      let value = build(formatDuration(parseDuration(window)), scope);
      if (series.absentIsZero && breaches(rule, 0)) {
        value = `(${value} or (0 * count(${scope.select('bastion_build_info')})))`;
      }
      const comparison = `${value} ${rule.op} ${rule.threshold}`;
      // NaN (no observations in a quantile, an empty pool) only passes `!=`; Bastion calls it no data.
      return rule.op === '!=' ? `(${comparison}) and (${value} == ${value})` : comparison;
    };
    const expr =
      rule.also_window === undefined
        ? condition(rule.window)
        : `(${condition(rule.window)}) and (${condition(rule.also_window)})`;
    const forMs = parseDuration(rule.for);
    // Annotations see Bastion's labels (the rule's, alertname and severity); Prometheus sets alertname.
    const known: Record<string, string> = { ...rule.labels, alertname: rule.name, severity: rule.severity };
    const labels = Object.entries(known).filter(([name]) => name !== 'alertname');
    translation.rules.push({
      alert: rule.name,
      expr,
      ...(forMs > 0 ? { for: formatDuration(forMs) } : {}),
      labels: Object.fromEntries(labels.map(([name, value]) => [name, goLiteral(value)])),
      annotations: Object.fromEntries(
        Object.entries(rule.annotations).map(([name, text]) => [name, translateTemplate(text, rule, known)]),
      ),
    });
  }
  return translation;
}

/**
 * A Prometheus rule file (YAML, one group `bastion`) of Bastion alert rules; rules without a
 * faithful PromQL translation are left out and listed in a comment at the top.
 */
export function exportPrometheusRules(
  rules: readonly AlertRuleInput[],
  options: PrometheusExportOptions = {},
): string {
  return renderRuleFile(translateRules(rules, options));
}

/** The YAML rule file of a translation, the skipped rules listed in a comment at the top. */
export function renderRuleFile(translation: PrometheusTranslation): string {
  const document = new Document({ groups: [{ name: 'bastion', rules: translation.rules }] });
  const comment = [
    ' Prometheus alerting rules made by `bastion alerts export-prometheus` from Bastion alert rules.',
    ' Routing (channels, grouping, repeats, escalation) is Alertmanager’s part.',
  ];
  if (translation.skipped.length > 0) {
    comment.push(' Not exported:');
    for (const skipped of translation.skipped) comment.push(` - "${skipped.name}": ${skipped.reason}`);
  }
  document.commentBefore = comment.join('\n');
  return document.toString({ lineWidth: 0 });
}

function promqlScope(options: PrometheusExportOptions): PromqlScope {
  const extra = options.matchers?.trim().replace(/,$/, '') ?? '';
  if (extra !== '' && !MATCHERS.test(extra)) {
    throw new TypeError(`matchers must be PromQL label matchers such as job="bastion", not ${extra}`);
  }
  const bounds = options.latencyBounds ?? new HttpMetrics(new Registry()).duration.read().bounds;
  const threshold = options.latencyThresholdSeconds ?? 0.5;
  // As metric-history counts it: above the first bound at or over the threshold (else the last bound).
  let slow = bounds[bounds.length - 1];
  for (let i = bounds.length - 1; i >= 0; i -= 1) {
    if ((bounds[i] as number) >= threshold) slow = bounds[i];
  }
  if (slow === undefined) throw new TypeError('latencyBounds must not be empty');
  return {
    select: (metric, matchers) => {
      const all = [matchers, extra].filter((part) => part !== undefined && part !== '');
      return all.length === 0 ? metric : `${metric}{${all.join(',')}}`;
    },
    // Prometheus 3 writes whole bounds as `1.0` where prom-client and Prometheus 2 have `1`.
    slowBucket: Number.isInteger(slow) ? `le=~"${slow}|${slow}.0"` : `le="${slow}"`,
  };
}

// A Bastion template in Go's template language, as Prometheus expands annotations. Bastion's
// series carry no labels of their own, so `$labels.x` and `$rule` are known when exporting.

function translateTemplate(template: string, rule: AlertRuleInput, labels: Record<string, string>): string {
  let translated = '';
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    translated += goLiteral(template.slice(last, match.index));
    translated += placeholder(match[1] as string, match[0], rule, labels);
    last = match.index + match[0].length;
  }
  return translated + goLiteral(template.slice(last));
}

function placeholder(
  expression: string,
  whole: string,
  rule: AlertRuleInput,
  labels: Record<string, string>,
): string {
  switch (expression) {
    case '$value':
      // Bastion prints 4 significant digits.
      return '{{ printf "%.4g" $value }}';
    case '$threshold':
      return goLiteral(formatAlertValue(rule.threshold));
    case '$rule':
      return goLiteral(rule.name);
    case '$series':
      return goLiteral(rule.series);
    default: {
      const label = LABEL.exec(expression);
      // Unknown placeholders stay as written, as Bastion leaves them.
      return goLiteral(label ? (labels[label[1] as string] ?? '') : whole);
    }
  }
}

// Text Go's template engine prints as is: each `{` becomes an action printing it.
function goLiteral(text: string): string {
  return text.replace(/\{/g, '{{ "{" }}');
}
