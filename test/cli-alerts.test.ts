import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from './support/cli.ts';
import { promtool, withPromtool } from './support/promtool.ts';

/** Runs `promtool check rules FILE`. */
const promtoolCheck = (file: string) => promtool(['check', 'rules', file]);

let directory: string;
let env: Record<string, string>;
beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'bastion-cli-alerts-'));
  // No database is reachable: the export must not need one.
  env = {
    BASTION_DATA_DIR: path.join(directory, 'data-never-created'),
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    BASTION_LOG_FORMAT: 'json',
  };
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const CONFIG = `
alerts:
  slo:
    latency: null
  rules:
    - name: Attack burst
      series: security.events
      aggregation: sum
      window: 1m
      op: ">"
      threshold: 0
      severity: critical
      labels: { team: security }
      annotations: { summary: "{{ $value }} attacks in a minute ({{ $labels.team }})" }
    - name: Busiest second
      series: http.requests
      aggregation: max
      window: 5m
      op: ">"
      threshold: 1000
      severity: info
`;

// Each case spawns the CLI from the sources (tsx), which takes seconds on a busy machine.
describe('bastion alerts export-prometheus', { timeout: 60_000 }, () => {
  it('prints --help', async () => {
    const results = await Promise.all([
      runCli(['alerts', '--help'], env),
      runCli(['alerts', 'export-prometheus', '--help'], env),
      runCli(['--help'], env),
    ]);
    for (const result of results) expect(result.code).toBe(0);
    expect(results[0]?.stdout).toMatch(/^Usage: bastion alerts/);
    expect(results[0]?.stdout).toContain('export-prometheus');
    expect(results[1]?.stdout).toMatch(/^Usage: bastion alerts export-prometheus \[options\]/);
    for (const flag of ['--output <file>', '--config <file>', '--matchers <matchers>']) {
      expect(results[1]?.stdout).toContain(flag);
    }
    expect(results[2]?.stdout).toMatch(/^ {2}alerts\b/m);
  });

  withPromtool(
    'writes the defaults, SLO and config rules to a file promtool accepts, without a database',
    async () => {
      const config = path.join(directory, 'bastion.yaml');
      const output = path.join(directory, 'bastion-rules.yml');
      await writeFile(config, CONFIG);
      const result = await runCli(
        [
          'alerts',
          'export-prometheus',
          '--config',
          config,
          '--output',
          output,
          '--matchers',
          'job="bastion"',
        ],
        env,
      );
      expect(result.stderr).toBe(
        'Not exported: "Busiest second": series "http.requests" with aggregation "max" has no faithful PromQL ' +
          '(supported: sum, rate)\n',
      );
      expect(result.code).toBe(0);
      // 13 defaults, 2 availability burn-rate rules (latency SLO off), 1 of the 2 config rules.
      expect(result.stdout).toBe(`Wrote 16 alerting rule(s) to ${output}.\n`);
      expect(existsSync(env.BASTION_DATA_DIR as string)).toBe(false);

      const check = promtoolCheck(output);
      expect(check.output).toContain('SUCCESS: 16 rules found');
      expect(check.status).toBe(0);
      const text = await readFile(output, 'utf8');
      const rules = (parse(text) as { groups: Array<{ rules: Array<Record<string, unknown>> }> }).groups[0]
        ?.rules;
      expect(rules?.find((rule) => rule.alert === 'Attack burst')).toEqual({
        alert: 'Attack burst',
        expr: 'sum(increase(bastion_security_events_total{job="bastion"}[1m])) > 0',
        labels: { team: 'security', severity: 'critical' },
        annotations: { summary: '{{ printf "%.4g" $value }} attacks in a minute (security)' },
      });
      expect(rules?.some((rule) => String(rule.alert).startsWith('Latency burn rate'))).toBe(false);
      expect(text).toContain('# - "Busiest second": series "http.requests"');
    },
  );

  it('prints the rule file on stdout without --output', async () => {
    const result = await runCli(['alerts', 'export-prometheus'], env);
    expect(result.code).toBe(0);
    const file = parse(result.stdout) as { groups: Array<{ name: string; rules: Array<{ alert: string }> }> };
    expect(file.groups[0]?.name).toBe('bastion');
    // 13 defaults and both SLOs' burn-rate rules.
    expect(file.groups[0]?.rules).toHaveLength(17);
    expect(file.groups[0]?.rules.map((rule) => rule.alert)).toContain('Latency burn rate 14.4x');
  });

  it('refuses an invalid config rule with the configuration exit code', async () => {
    const config = path.join(directory, 'broken.yaml');
    await writeFile(config, 'alerts:\n  rules:\n    - name: Broken\n      series: http.requests\n');
    const result = await runCli(['alerts', 'export-prometheus', '--config', config], env);
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(
      /^Invalid alert rules:\n {2}- alerts\.rules\[0\] \(config\): Invalid alert rule/,
    );
    expect(result.stdout).toBe('');
  });
});
