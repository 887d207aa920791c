import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { promtool, withPromtool } from '../../test/support/promtool.ts';
import { seriesDefinitions } from '../observability/metric-history/series-definitions.ts';
import {
  exportPrometheusRules,
  PROMQL_SERIES,
  type PrometheusAlertingRule,
  translateRules,
} from './prometheus-export.ts';
import { AGGREGATIONS, type AlertRuleInput, burnRateRules, defaultRules } from './rules.ts';

const directory = mkdtempSync(path.join(tmpdir(), 'bastion-promrules-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Runs `promtool check rules` on a rule file; returns its exit status and everything it printed. */
function promtoolCheck(yaml: string): { status: number | null; output: string } {
  const file = path.join(directory, `rules-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, yaml);
  return promtool(['check', 'rules', file]);
}

/** The exported rules, as Prometheus reads the file. */
function parsed(yaml: string): PrometheusAlertingRule[] {
  const file = parse(yaml) as { groups: Array<{ name: string; rules: PrometheusAlertingRule[] }> };
  expect(file.groups.map((group) => group.name)).toEqual(['bastion']);
  return file.groups[0]?.rules ?? [];
}

function byName(rules: PrometheusAlertingRule[], name: string): PrometheusAlertingRule {
  const rule = rules.find((candidate) => candidate.alert === name);
  if (!rule) throw new Error(`no exported rule ${name}`);
  return rule;
}

function rule(overrides: Partial<AlertRuleInput>): AlertRuleInput {
  return {
    name: 'Custom',
    series: 'http.requests',
    aggregation: 'sum',
    window: '5m',
    op: '>',
    threshold: 0,
    for: '0s',
    severity: 'warning',
    channels: [],
    labels: {},
    annotations: {},
    enabled: true,
    ...overrides,
  };
}

const ERRORS_5M = 'sum(rate(http_server_request_duration_seconds_count{status_code=~"5.."}[5m]))';
const REQUESTS_5M = 'sum(rate(http_server_request_duration_seconds_count[5m]))';

describe('exportPrometheusRules', () => {
  withPromtool('exports the default rules as a rule file promtool accepts', () => {
    const yaml = exportPrometheusRules(defaultRules(['log']));
    const check = promtoolCheck(yaml);
    expect(check.output).toContain('SUCCESS: 13 rules found');
    expect(check.status).toBe(0);

    const rules = parsed(yaml);
    expect(rules.map((exported) => exported.alert)).toEqual(defaultRules([]).map((input) => input.name));
    expect(byName(rules, 'High CPU')).toEqual({
      alert: 'High CPU',
      expr: '100 * avg(avg_over_time(host_cpu_utilization_ratio[5m])) > 90',
      for: '5m',
      labels: { group: 'system.cpu', severity: 'warning' },
      annotations: { summary: 'CPU at {{ printf "%.4g" $value }}% (over 90%)' },
    });
    expect(byName(rules, 'Error ratio critical').expr).toBe(
      `(${ERRORS_5M} or vector(0)) / (${REQUESTS_5M} > 0) > 0.1`,
    );
    expect(byName(rules, 'Slow p95').expr).toBe(
      'histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket[5m]))) > 0.5',
    );
    expect(byName(rules, 'Security event burst').expr).toBe(
      'sum(increase(bastion_security_events_total[1h])) > 100',
    );
    expect(byName(rules, 'Disk almost full')).toMatchObject({
      expr:
        'max(last_over_time((100 * host_disk_bytes{state="used"} / ignoring(state) ' +
        '(host_disk_bytes{state="used"} + ignoring(state) host_disk_bytes{state="available"}))[5m:])) > 90',
    });
    expect(byName(rules, 'Disk almost full').for).toBeUndefined();
    expect(byName(rules, 'Restarted').expr).toBe(
      'min(last_over_time((time() - process_start_time_seconds)[1m:])) < 300',
    );
  });

  withPromtool('exports the SLO burn-rate rules as multi-window conditions', () => {
    const rules = [
      ...burnRateRules('Availability', 'http.error_ratio', 0.999, []),
      ...burnRateRules('Latency', 'http.slow_ratio', 0.99, []),
    ];
    const yaml = exportPrometheusRules(rules, { latencyThresholdSeconds: 0.25 });
    const check = promtoolCheck(yaml);
    expect(check.output).toContain('SUCCESS: 4 rules found');
    expect(check.status).toBe(0);

    const exported = parsed(yaml);
    const page = 14.4 * (1 - 0.999);
    const ratio = (window: string) =>
      `(sum(rate(http_server_request_duration_seconds_count{status_code=~"5.."}[${window}])) or vector(0)) / ` +
      `(sum(rate(http_server_request_duration_seconds_count[${window}])) > 0) > ${page}`;
    expect(byName(exported, 'Availability burn rate 14.4x')).toEqual({
      alert: 'Availability burn rate 14.4x',
      expr: `(${ratio('1h')}) and (${ratio('5m')})`,
      labels: { group: 'slo:Availability', slo: 'Availability', severity: 'critical' },
      annotations: {
        summary:
          'Availability: error budget burning 14.4x too fast over 1h and 5m ({{ printf "%.4g" $value }} bad)',
      },
    });
    expect(byName(exported, 'Latency burn rate 6x').expr).toBe(
      '((sum(rate(http_server_request_duration_seconds_count[6h])) - ' +
        'sum(rate(http_server_request_duration_seconds_bucket{le="0.25"}[6h]))) / ' +
        `(sum(rate(http_server_request_duration_seconds_count[6h])) > 0) > ${6 * (1 - 0.99)}) and ` +
        '((sum(rate(http_server_request_duration_seconds_count[30m])) - ' +
        'sum(rate(http_server_request_duration_seconds_bucket{le="0.25"}[30m]))) / ' +
        `(sum(rate(http_server_request_duration_seconds_count[30m])) > 0) > ${6 * (1 - 0.99)})`,
    );
  });

  it('counts slow requests above the first bucket bound at or over the threshold, as Bastion does', () => {
    const slow = (latencyThresholdSeconds: number) =>
      translateRules([rule({ series: 'http.slow_ratio', aggregation: 'ratio' })], {
        latencyThresholdSeconds,
      }).rules[0]?.expr.match(/le=~?"[^"]+"/)?.[0];
    expect(slow(0.5)).toBe('le="0.5"');
    expect(slow(0.3)).toBe('le="0.5"');
    expect(slow(0.001)).toBe('le="0.001"');
    // Whole bounds are `1.0` once Prometheus 3 has scraped them.
    expect(slow(0.9)).toBe('le=~"1|1.0"');
    expect(slow(60)).toBe('le=~"10|10.0"');
  });

  withPromtool('translates a custom rule: templates, labels, durations, gaps and matchers', () => {
    const custom = rule({
      name: 'SQL injection {drought}',
      series: 'security.events.sqli',
      window: '1.5h',
      op: '<',
      threshold: 1,
      for: '90s',
      severity: 'info',
      labels: { team: 'db{{sec}}', severity: 'ignored' },
      annotations: {
        summary:
          '{{ $rule }} on {{ $series }}: {{ $value }} < {{ $threshold }} for {{ $labels.team }} ' +
          '({{ $labels.severity }}, {{ $labels.instance }}) {{{ $value }}',
        unknown: 'left as written: {{ $nope }}',
      },
    });
    const yaml = exportPrometheusRules([custom], { matchers: 'job="bastion"' });
    const check = promtoolCheck(yaml);
    expect(check.output).toContain('SUCCESS: 1 rules found');
    expect(check.status).toBe(0);
    expect(parsed(yaml)).toEqual([
      {
        alert: 'SQL injection {drought}',
        // Nothing counted yet is 0 in Bastion: the gap is filled while Bastion is scraped.
        expr:
          '(sum(increase(bastion_security_events_total{attack_class="sqli",job="bastion"}[90m])) or ' +
          '(0 * count(bastion_build_info{job="bastion"}))) < 1',
        for: '90s',
        labels: { team: 'db{{ "{" }}{{ "{" }}sec}}', severity: 'info' },
        annotations: {
          summary:
            'SQL injection {{ "{" }}drought} on security.events.sqli: {{ printf "%.4g" $value }} < 1 for ' +
            'db{{ "{" }}{{ "{" }}sec}} (info, ) {{ "{" }}{{ printf "%.4g" $value }}',
          unknown: 'left as written: {{ "{" }}{{ "{" }} $nope }}',
        },
      },
    ]);
  });

  it('reports pairs without faithful PromQL, unknown series and disabled rules instead of guessing', () => {
    const rules = [
      rule({ name: 'Peak requests', series: 'http.requests', aggregation: 'max' }),
      rule({ name: 'Made up', series: 'http.made_up' }),
      rule({ name: 'Switched off', enabled: false }),
      rule({ name: 'Kept', series: 'ws.connects', aggregation: 'rate' }),
    ];
    const translation = translateRules(rules);
    expect(translation.rules.map((exported) => exported.alert)).toEqual(['Kept']);
    expect(translation.rules[0]?.expr).toBe('sum(rate(bastion_ws_connects_total[5m])) > 0');
    expect(translation.skipped).toEqual([
      {
        name: 'Peak requests',
        reason: 'series "http.requests" with aggregation "max" has no faithful PromQL (supported: sum, rate)',
      },
      { name: 'Made up', reason: 'series "http.made_up" has no PromQL translation' },
      { name: 'Switched off', reason: 'disabled' },
    ]);
    const yaml = exportPrometheusRules(rules);
    expect(yaml).toMatch(
      /^# Not exported:\n# - "Peak requests": series "http.requests" with aggregation "max" has no faithful PromQL/m,
    );
    expect(yaml).toContain('# - "Made up": series "http.made_up" has no PromQL translation');
    expect(parsed(yaml).map((exported) => exported.alert)).toEqual(['Kept']);
  });

  it('refuses matchers that are not PromQL label matchers', () => {
    expect(() => translateRules([rule({})], { matchers: 'job=bastion' })).toThrow(TypeError);
    expect(() => translateRules([rule({})], { matchers: 'job="a"}) or vector(1' })).toThrow(TypeError);
    expect(translateRules([rule({})], { matchers: 'job="a", env=~"prod|stage"' }).rules[0]?.expr).toBe(
      'sum(increase(http_server_request_duration_seconds_count{job="a", env=~"prod|stage"}[5m])) > 0',
    );
  });

  it("maps every series Bastion's metric history defines", () => {
    const names = seriesDefinitions({ bounds: [0.5, 1], latencyThresholdSeconds: 0.5 }).map(
      (series) => series.name,
    );
    expect(names.filter((name) => PROMQL_SERIES[name] === undefined)).toEqual([]);
  });

  withPromtool('every mapped series and aggregation is valid PromQL, whatever the comparison', () => {
    const rules: AlertRuleInput[] = [];
    for (const [series, mapping] of Object.entries(PROMQL_SERIES)) {
      for (const aggregation of AGGREGATIONS.filter((candidate) => mapping.expressions[candidate])) {
        for (const op of ['>', '<', '!='] as const) {
          rules.push(
            rule({ name: `${series} ${aggregation} ${op}`, series, aggregation, op, also_window: '1m' }),
          );
        }
      }
    }
    const translation = translateRules(rules, { matchers: 'job="bastion"' });
    expect(translation.skipped).toEqual([]);
    const check = promtoolCheck(exportPrometheusRules(rules, { matchers: 'job="bastion"' }));
    expect(check.output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(check.status).toBe(0);
  });

  withPromtool('the exported rules fire on the data they describe (promtool test rules)', () => {
    const quiet = rule({
      name: 'No attacks seen',
      series: 'security.events',
      window: '10m',
      op: '<',
      threshold: 1,
    });
    const rules = path.join(directory, 'semantics.yml');
    writeFileSync(rules, exportPrometheusRules([...defaultRules([]), quiet]));
    const series = (name: string, values: string) => ({ series: name, values });
    const tests = {
      rule_files: [rules],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            series('http_server_request_duration_seconds_count{route="/a",status_code="200"}', '0+80x20'),
            series('http_server_request_duration_seconds_count{route="/a",status_code="503"}', '0+20x20'),
            series('host_cpu_utilization_ratio{instance="a"}', '0.95x20'),
            series('host_cpu_utilization_ratio{instance="b"}', '0.97x20'),
            series('bastion_build_info{instance="a"}', '1x20'),
          ],
          alert_rule_test: [
            {
              eval_time: '10m',
              alertname: 'Error ratio critical',
              exp_alerts: [
                {
                  exp_labels: { group: 'http.error_ratio', severity: 'critical' },
                  exp_annotations: { summary: '0.2 of requests fail (over 10%)' },
                },
              ],
            },
            {
              eval_time: '10m',
              alertname: 'High CPU',
              exp_alerts: [
                {
                  exp_labels: { group: 'system.cpu', severity: 'warning' },
                  exp_annotations: { summary: 'CPU at 96% (over 90%)' },
                },
              ],
            },
            // Nothing counted while Bastion is scraped is 0, as in Bastion.
            {
              eval_time: '10m',
              alertname: 'No attacks seen',
              exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: {} }],
            },
          ],
        },
        {
          interval: '1m',
          // Bastion not scraped at all: no data, so no alert.
          input_series: [series('up{job="other"}', '1x20')],
          alert_rule_test: [{ eval_time: '10m', alertname: 'No attacks seen', exp_alerts: [] }],
        },
      ],
    };
    const file = path.join(directory, 'semantics.test.yml');
    writeFileSync(file, JSON.stringify(tests));
    const result = promtool(['test', 'rules', file]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  withPromtool('the promtool check does report a bad rule file (it can fail)', () => {
    const check = promtoolCheck('groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n');
    expect(check.status).not.toBe(0);
  });
});
