import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { isDuration, parseDuration } from './durations.ts';
import { unknownPlaceholders } from './templates.ts';
import type { Severity } from './types.ts';

/** How a rule reduces its series over the window. */
export type Aggregation = 'avg' | 'max' | 'min' | 'sum' | 'rate' | 'ratio' | 'p95' | 'p99' | 'last';
export const AGGREGATIONS: readonly Aggregation[] = [
  'avg',
  'max',
  'min',
  'sum',
  'rate',
  'ratio',
  'p95',
  'p99',
  'last',
];

/** A comparison of the aggregated value with the threshold. */
export type Comparison = '>' | '>=' | '<' | '<=' | '==' | '!=';
const COMPARISONS: readonly Comparison[] = ['>', '>=', '<', '<=', '==', '!='];

const Duration = Type.String({ minLength: 2, maxLength: 16, description: 'e.g. 0s, 30s, 5m, 1h' });
const LabelMap = Type.Record(
  Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}$' }),
  Type.String({ maxLength: 500 }),
  {
    default: {},
  },
);

/** An alert rule as the config file (`alerts.rules[]`) and `POST /api/v1/alerts/rules` take it. */
export const AlertRuleSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    series: Type.String({ minLength: 1, maxLength: 100 }),
    aggregation: Type.Enum([...AGGREGATIONS]),
    window: Duration,
    /** A second window the condition must also hold over (multi-window SLO burn rates). */
    also_window: Type.Optional(Duration),
    op: Type.Enum([...COMPARISONS]),
    threshold: Type.Number(),
    for: Type.String({ minLength: 2, maxLength: 16, default: '0s' }),
    severity: Type.Enum(['info', 'warning', 'critical']),
    channels: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: [], maxItems: 20 }),
    labels: LabelMap,
    annotations: LabelMap,
    group_by: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 63 }), { maxItems: 10 })),
    repeat_interval: Type.Optional(Duration),
    /** Channels told when a critical alert is not acknowledged in time. */
    escalation: Type.Optional(
      Type.Object(
        {
          after: Duration,
          channels: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 20 }),
        },
        { additionalProperties: false },
      ),
    ),
    enabled: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
);
export type AlertRuleInput = Static<typeof AlertRuleSchema>;

/** A checked rule with its durations in milliseconds. */
export interface AlertRule {
  name: string;
  series: string;
  aggregation: Aggregation;
  windowMs: number;
  alsoWindowMs: number | null;
  op: Comparison;
  threshold: number;
  forMs: number;
  severity: Severity;
  channels: readonly string[];
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  groupBy: readonly string[];
  repeatIntervalMs: number | null;
  escalation: { afterMs: number; channels: readonly string[] } | null;
  enabled: boolean;
  /** Where the rule comes from: Bastion's defaults, the config file, SLO objectives or the API. */
  source: 'default' | 'config' | 'slo' | 'api';
  /** The rule as written (what the API returns). */
  definition: AlertRuleInput;
}

/** What a rule is checked against: the series and channels that exist. */
export interface RuleContext {
  series: ReadonlySet<string>;
  channels: ReadonlySet<string>;
}

/**
 * Checks a rule (schema, durations, series, channels, templates) and returns it in its
 * internal form, or throws a TypeError listing every problem.
 */
export function compileRule(input: unknown, source: AlertRule['source'], context: RuleContext): AlertRule {
  const withDefaults = Value.Default(AlertRuleSchema, structuredClone(input ?? {}));
  const problems = [...Value.Errors(AlertRuleSchema, withDefaults)].map(
    (error) => `${error.instancePath || '/'} ${error.message}`,
  );
  if (problems.length > 0) throw new TypeError(`Invalid alert rule: ${problems.join('; ')}`);
  const rule = withDefaults as AlertRuleInput;
  const durations: Array<[string, string | undefined]> = [
    ['window', rule.window],
    ['also_window', rule.also_window],
    ['for', rule.for],
    ['repeat_interval', rule.repeat_interval],
    ['escalation.after', rule.escalation?.after],
  ];
  for (const [field, value] of durations) {
    if (value !== undefined && !isDuration(value))
      problems.push(`${field} "${value}" is not a duration (e.g. 30s, 5m, 1h)`);
  }
  if (!context.series.has(rule.series))
    problems.push(`series "${rule.series}" does not exist (GET /api/v1/alerts/series)`);
  for (const channel of [...rule.channels, ...(rule.escalation?.channels ?? [])]) {
    if (!context.channels.has(channel)) problems.push(`channel "${channel}" is not configured`);
  }
  for (const [name, template] of Object.entries(rule.annotations)) {
    const unknown = unknownPlaceholders(template);
    if (unknown.length > 0)
      problems.push(`annotation ${name} uses unknown placeholders ${unknown.join(', ')}`);
  }
  if (problems.length > 0) throw new TypeError(`Invalid alert rule "${rule.name}": ${problems.join('; ')}`);
  const windowMs = parseDuration(rule.window);
  if (windowMs <= 0) throw new TypeError(`Invalid alert rule "${rule.name}": window must be longer than 0s`);
  return {
    name: rule.name,
    series: rule.series,
    aggregation: rule.aggregation as Aggregation,
    windowMs,
    alsoWindowMs: rule.also_window === undefined ? null : parseDuration(rule.also_window),
    op: rule.op as Comparison,
    threshold: rule.threshold,
    forMs: parseDuration(rule.for),
    severity: rule.severity as Severity,
    channels: rule.channels,
    labels: rule.labels,
    annotations: rule.annotations,
    groupBy: rule.group_by ?? ['alertname'],
    repeatIntervalMs: rule.repeat_interval === undefined ? null : parseDuration(rule.repeat_interval),
    escalation: rule.escalation
      ? { afterMs: parseDuration(rule.escalation.after), channels: rule.escalation.channels }
      : null,
    enabled: rule.enabled,
    source,
    definition: rule,
  };
}

/** Whether `value` breaches the rule (no data never does). */
export function breaches(rule: Pick<AlertRule, 'op' | 'threshold'>, value: number | null): boolean {
  if (value === null || Number.isNaN(value)) return false;
  switch (rule.op) {
    case '>':
      return value > rule.threshold;
    case '>=':
      return value >= rule.threshold;
    case '<':
      return value < rule.threshold;
    case '<=':
      return value <= rule.threshold;
    case '==':
      return value === rule.threshold;
    case '!=':
      return value !== rule.threshold;
  }
}

const summary = (text: string) => ({ summary: text });

/**
 * Bastion's default rules: resources, errors, latency, the database pool, security, identity,
 * rate limiting, WebSocket churn and restarts. Warnings and criticals on the same series share a
 * `group` label, so a firing critical mutes its warning (inhibition).
 */
export function defaultRules(channels: readonly string[]): AlertRuleInput[] {
  const rule = (
    name: string,
    series: string,
    aggregation: Aggregation,
    window: string,
    op: Comparison,
    threshold: number,
    severity: Severity,
    forDuration: string,
    text: string,
    extra: Partial<AlertRuleInput> = {},
  ): AlertRuleInput => ({
    name,
    series,
    aggregation,
    window,
    op,
    threshold,
    for: forDuration,
    severity,
    channels: [...channels],
    labels: { group: series },
    annotations: summary(text),
    enabled: true,
    ...extra,
  });
  return [
    rule('High CPU', 'system.cpu', 'avg', '5m', '>', 90, 'warning', '5m', 'CPU at {{ $value }}% (over 90%)'),
    rule(
      'High memory',
      'system.memory',
      'avg',
      '5m',
      '>',
      90,
      'warning',
      '5m',
      'Memory at {{ $value }}% (over 90%)',
    ),
    rule(
      'Disk almost full',
      'system.disk',
      'last',
      '5m',
      '>',
      90,
      'warning',
      '0s',
      'Disk at {{ $value }}% (over 90%)',
    ),
    rule(
      'Error ratio critical',
      'http.error_ratio',
      'ratio',
      '5m',
      '>',
      0.1,
      'critical',
      '1m',
      '{{ $value }} of requests fail (over 10%)',
    ),
    rule(
      'Error ratio elevated',
      'http.error_ratio',
      'ratio',
      '5m',
      '>',
      0.01,
      'warning',
      '5m',
      '{{ $value }} of requests fail (over 1%)',
    ),
    rule(
      'Slow responses',
      'http.latency_avg',
      'avg',
      '5m',
      '>',
      1,
      'warning',
      '5m',
      'Average latency {{ $value }} s (over 1 s)',
    ),
    rule(
      'Slow p95',
      'http.latency_p95',
      'p95',
      '5m',
      '>',
      0.5,
      'warning',
      '5m',
      'p95 latency {{ $value }} s (over 500 ms)',
    ),
    rule(
      'Database pool saturated',
      'db.pool_usage',
      'avg',
      '5m',
      '>',
      90,
      'warning',
      '5m',
      'Pool {{ $value }}% in use (over 90%)',
    ),
    rule(
      'Security event burst',
      'security.events',
      'sum',
      '1h',
      '>',
      100,
      'warning',
      '0s',
      '{{ $value }} security events in the last hour',
    ),
    rule(
      'Identity failures',
      'auth.failures',
      'sum',
      '1h',
      '>',
      50,
      'warning',
      '0s',
      '{{ $value }} failed sign-ins in the last hour',
    ),
    rule(
      'Rate limiting',
      'http.rate_limited',
      'sum',
      '1h',
      '>',
      100,
      'warning',
      '0s',
      '{{ $value }} rate-limited requests in the last hour',
    ),
    rule(
      'WebSocket churn',
      'ws.disconnects',
      'sum',
      '1m',
      '>',
      5,
      'warning',
      '0s',
      '{{ $value }} WebSocket disconnects in a minute',
    ),
    rule(
      'Restarted',
      'process.uptime',
      'last',
      '1m',
      '<',
      300,
      'info',
      '0s',
      'An instance started {{ $value }} s ago',
      {
        repeat_interval: '24h',
      },
    ),
  ];
}

/**
 * SLO burn-rate rules (multi-window, as in the SRE workbook): the error budget burning 14.4
 * times too fast over 1 h and 5 min pages (critical); 6 times over 6 h and 30 min opens a ticket
 * (warning). `objective` is the target fraction of good events (e.g. 0.999); `series` gives the
 * fraction of bad events.
 */
export function burnRateRules(
  name: string,
  series: string,
  objective: number,
  channels: readonly string[],
): AlertRuleInput[] {
  const budget = 1 - objective;
  const make = (factor: number, long: string, short: string, severity: Severity): AlertRuleInput => ({
    name: `${name} burn rate ${factor}x`,
    series,
    aggregation: 'ratio',
    window: long,
    also_window: short,
    op: '>',
    threshold: factor * budget,
    for: '0s',
    severity,
    channels: [...channels],
    labels: { group: `slo:${name}`, slo: name },
    annotations: {
      summary: `${name}: error budget burning ${factor}x too fast over ${long} and ${short} ({{ $value }} bad)`,
    },
    enabled: true,
  });
  return [make(14.4, '1h', '5m', 'critical'), make(6, '6h', '30m', 'warning')];
}

/** Where the configuration's alert settings come from (`alerts` of the config schema). */
export interface ConfiguredAlerts {
  defaultRules: boolean;
  slo: { availability: number | null; latency: number | null };
  rules: readonly unknown[];
}

/**
 * The rules a configuration defines, unchecked, each with its source: Bastion's defaults, the SLO
 * burn rates, then the config file's. The alert service and `alerts export-prometheus` both start
 * from this list, so they cannot drift apart.
 */
export function configuredRuleInputs(
  alerts: ConfiguredAlerts,
  channels: readonly string[],
): Array<{ input: unknown; source: AlertRule['source'] }> {
  const inputs: Array<{ input: unknown; source: AlertRule['source'] }> = [];
  if (alerts.defaultRules)
    for (const input of defaultRules(channels)) inputs.push({ input, source: 'default' });
  const { availability, latency } = alerts.slo;
  if (availability !== null) {
    for (const input of burnRateRules('Availability', 'http.error_ratio', availability, channels))
      inputs.push({ input, source: 'slo' });
  }
  if (latency !== null) {
    for (const input of burnRateRules('Latency', 'http.slow_ratio', latency, channels))
      inputs.push({ input, source: 'slo' });
  }
  for (const input of alerts.rules) inputs.push({ input, source: 'config' });
  return inputs;
}
