import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { renderRuleFile, translateRules } from '../../alerting/prometheus-export.ts';
import { type AlertRuleInput, compileRule, configuredRuleInputs } from '../../alerting/rules.ts';
import { ConfigError, type ConfigProblem } from '../../config/errors.ts';
import { loadConfig } from '../../config/load-config.ts';
import type { BastionConfig } from '../../config/schema.ts';

/** `bastion alerts export-prometheus`: Bastion's alert rules as a Prometheus rule file (no database needed). */
export function registerAlerts(program: Command, print: (line: string) => void): void {
  const alerts = program.command('alerts').description('Alert rules');
  alerts
    .command('export-prometheus')
    .description(
      "Write Bastion's alert rules (defaults, SLO burn rates, the config file's) as a Prometheus rule file",
    )
    .option('-o, --output <file>', 'write the rule file to FILE instead of stdout')
    .option('-c, --config <file>', 'YAML or JSON config file (overrides BASTION_CONFIG)')
    .option('--matchers <matchers>', 'label matchers added to every selector, e.g. job="bastion"')
    .action(async (options: { output?: string; config?: string; matchers?: string }) => {
      const config = await loadConfig({ file: options.config });
      const rules = configuredRules(config);
      const translation = translateRules(rules, {
        matchers: options.matchers,
        latencyThresholdSeconds: config.alerts.slo.latencyThresholdMs / 1000,
      });
      const yaml = renderRuleFile(translation);
      for (const rule of translation.skipped) {
        process.stderr.write(`Not exported: "${rule.name}": ${rule.reason}\n`);
      }
      if (options.output === undefined) {
        print(yaml.trimEnd());
        return;
      }
      await writeFile(options.output, yaml);
      print(`Wrote ${translation.rules.length} alerting rule(s) to ${options.output}.`);
    });
}

/**
 * The rules an instance with this configuration evaluates, apart from those added through the
 * API (they live in the database): defaults, SLO burn rates and the config file's, as the alert
 * service assembles them. Config rules are checked for shape; series and channels are checked
 * by the server against what exists.
 */
function configuredRules(config: BastionConfig): AlertRuleInput[] {
  const rules: AlertRuleInput[] = [];
  const problems: ConfigProblem[] = [];
  let index = 0;
  for (const { input, source } of configuredRuleInputs(config.alerts, config.alerts.defaultChannels)) {
    if (source !== 'config') {
      rules.push(input as AlertRuleInput);
      continue;
    }
    const candidate = (input ?? {}) as {
      series?: unknown;
      channels?: unknown;
      escalation?: { channels?: unknown };
    };
    const names = (list: unknown) => (Array.isArray(list) ? list.map(String) : []);
    const context = {
      series: new Set([String(candidate.series)]),
      channels: new Set([...names(candidate.channels), ...names(candidate.escalation?.channels)]),
    };
    try {
      rules.push(compileRule(input, 'config', context).definition);
    } catch (error) {
      problems.push({ key: `alerts.rules[${index}]`, source: 'config', message: (error as Error).message });
    }
    index += 1;
  }
  if (problems.length > 0) throw new ConfigError(problems, 'Invalid alert rules');
  return rules;
}
