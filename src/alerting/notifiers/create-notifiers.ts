import addressparser from 'nodemailer/lib/addressparser';
import type { Logger } from 'pino';
import type { BastionConfig } from '../../config/schema.ts';
import type { Clock } from '../../core/clock.ts';
import type { OutboundTransport } from '../../resilience/outbound-client.ts';
import type { ChannelKind, Notifier } from '../types.ts';
import { EmailNotifier } from './email-notifier.ts';
import { LogNotifier } from './log-notifier.ts';
import { PUSHOVER_API_URL, PushoverNotifier } from './pushover-notifier.ts';
import { SlackNotifier } from './slack-notifier.ts';
import { WebhookNotifier } from './webhook-notifier.ts';

/** What the channels are built with. */
export interface NotifierDependencies {
  /** Where the `log` channel writes, and where partial environment settings are reported. */
  logger: Logger;
  /** The outbound HTTP client, with private networks allowed (the operator chose the receivers). */
  transport: OutboundTransport;
  /** Dates webhook signatures and Retry-After (default: the system clock). */
  clock?: Clock;
}

/** One channel's settings, defaults from the environment already applied. */
interface ChannelSpec {
  name: string;
  kind: ChannelKind;
  url?: string | null;
  secret?: string | null;
  smtpUrl?: string | null;
  to?: readonly string[];
  from?: string;
  token?: string | null;
  user?: string | null;
  /** Environment variables the settings came from, by field, so messages name what to fix. */
  variables?: Readonly<Record<string, string>>;
}

// Environment settings that only make a channel together; alone, they may be defaults of named channels.
const PAIRED_VARIABLES = [
  { kind: 'email', variables: { SMTP_URL: 'smtpUrl', ALERT_EMAIL_TO: 'emailTo' } },
  { kind: 'pushover', variables: { PUSHOVER_TOKEN: 'pushoverToken', PUSHOVER_USER: 'pushoverUser' } },
] as const;

/**
 * The alert channels: one of each kind the environment configures (named by its kind), the
 * `log` channel always, and every named channel of `alerts.channels` (missing fields default to
 * the environment's). Throws a TypeError listing every channel that lacks what it needs, has a
 * URL of the wrong scheme, or reuses a name.
 */
export function createNotifiers(config: BastionConfig, deps: NotifierDependencies): Notifier[] {
  const env = config.alertChannels;
  warnIncompleteEnvironment(config, deps.logger);
  const specs: ChannelSpec[] = [];
  if (env.smtpUrl !== null && env.emailTo !== null) {
    specs.push({
      name: 'email',
      kind: 'email',
      smtpUrl: env.smtpUrl,
      to: [env.emailTo],
      variables: { smtpUrl: 'SMTP_URL', to: 'ALERT_EMAIL_TO' },
    });
  }
  if (env.slackWebhookUrl !== null) {
    specs.push({
      name: 'slack',
      kind: 'slack',
      url: env.slackWebhookUrl,
      variables: { url: 'SLACK_WEBHOOK_URL' },
    });
  }
  if (env.webhookUrl !== null) {
    specs.push({
      name: 'webhook',
      kind: 'webhook',
      url: env.webhookUrl,
      secret: env.webhookSecret,
      variables: { url: 'ALERT_WEBHOOK_URL' },
    });
  }
  if (env.pushoverToken !== null && env.pushoverUser !== null) {
    specs.push({
      name: 'pushover',
      kind: 'pushover',
      url: env.pushoverApiUrl ?? PUSHOVER_API_URL,
      token: env.pushoverToken,
      user: env.pushoverUser,
      variables: { url: 'PUSHOVER_API_URL' },
    });
  }
  specs.push({ name: 'log', kind: 'log' });
  for (const channel of config.alerts.channels) {
    specs.push({
      ...channel,
      url: channel.url ?? (channel.kind === 'pushover' ? (env.pushoverApiUrl ?? PUSHOVER_API_URL) : null),
      secret: channel.secret ?? env.webhookSecret,
      smtpUrl: channel.smtpUrl ?? env.smtpUrl,
      to: channel.to ?? (env.emailTo === null ? [] : [env.emailTo]),
      token: channel.token ?? env.pushoverToken,
      user: channel.user ?? env.pushoverUser,
    });
  }

  const problems: string[] = [];
  const notifiers: Notifier[] = [];
  for (const spec of specs) {
    const notifier = buildChannel(spec, deps, problems);
    if (!notifier) continue;
    if (notifiers.some((existing) => existing.name === notifier.name)) {
      problems.push(`alert channel "${notifier.name}" is defined twice (channel names must be unique)`);
    } else notifiers.push(notifier);
  }
  if (problems.length > 0) throw new TypeError(`Alert channels refused:\n- ${problems.join('\n- ')}`);
  return notifiers;
}

// Checks a channel's settings and builds it; null (with problems recorded) when it cannot be built.
function buildChannel(spec: ChannelSpec, deps: NotifierDependencies, problems: string[]): Notifier | null {
  const check = new SettingsCheck(spec, problems);
  const common = { name: spec.name, transport: deps.transport, clock: deps.clock };
  switch (spec.kind) {
    case 'webhook': {
      const url = check.httpUrl('url', spec.url);
      return url ? new WebhookNotifier({ ...common, url, secret: spec.secret ?? null }) : null;
    }
    case 'slack': {
      const url = check.httpUrl('url', spec.url);
      return url ? new SlackNotifier({ ...common, url }) : null;
    }
    case 'email': {
      const smtpUrl = check.smtpUrl('smtpUrl', spec.smtpUrl);
      const to = check.recipients('to', spec.to ?? []);
      return smtpUrl && to ? new EmailNotifier({ name: spec.name, smtpUrl, to, from: spec.from }) : null;
    }
    case 'pushover': {
      const token = check.present('token', spec.token);
      const user = check.present('user', spec.user);
      const apiUrl = check.httpUrl('url', spec.url);
      return token && user && apiUrl ? new PushoverNotifier({ ...common, token, user, apiUrl }) : null;
    }
    case 'log':
      return new LogNotifier({ name: spec.name, logger: deps.logger });
  }
}

/**
 * Checks one channel's settings, recording each problem with the channel and the setting (or
 * its environment variable). Values are never repeated: URLs and keys may be secrets.
 */
class SettingsCheck {
  readonly #spec: ChannelSpec;
  readonly #problems: string[];

  constructor(spec: ChannelSpec, problems: string[]) {
    this.#spec = spec;
    this.#problems = problems;
  }

  present(field: string, value: string | null | undefined): string | null {
    if (value !== null && value !== undefined && value !== '') return value;
    this.#problem(field, 'is missing');
    return null;
  }

  httpUrl(field: string, value: string | null | undefined): string | null {
    const url = this.#url(field, value);
    if (!url) return null;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      this.#problem(field, `must be an http(s) URL, not ${url.protocol}`);
    } else if (url.username !== '' || url.password !== '') {
      this.#problem(field, 'must not contain credentials');
    } else return url.href;
    return null;
  }

  smtpUrl(field: string, value: string | null | undefined): string | null {
    const url = this.#url(field, value);
    if (!url) return null;
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
      this.#problem(field, `must be an smtp:// or smtps:// URL, not ${url.protocol}`);
      return null;
    }
    return value as string;
  }

  /** Addresses of the entries; each may hold several, comma-separated (ALERT_EMAIL_TO). */
  recipients(field: string, entries: readonly string[]): string[] | null {
    const addresses = entries.flatMap((entry) => addressparser(entry, { flatten: true }));
    if (addresses.length === 0) {
      this.#problem(field, 'is missing (no recipients)');
      return null;
    }
    const invalid = addresses.filter((entry) => !/^[^@\s]+@[^@\s]+$/.test(entry.address));
    if (invalid.length > 0) {
      this.#problem(
        field,
        `has invalid addresses: ${invalid.map((entry) => entry.address || entry.name).join(', ')}`,
      );
      return null;
    }
    return addresses.map((entry) => entry.address);
  }

  #url(field: string, value: string | null | undefined): URL | null {
    const present = this.present(field, value);
    if (present === null) return null;
    try {
      const url = new URL(present);
      if (url.hostname !== '') return url;
    } catch {
      // Reported below.
    }
    this.#problem(field, 'is not a valid URL');
    return null;
  }

  #problem(field: string, message: string): void {
    const setting = this.#spec.variables?.[field] ?? field;
    this.#problems.push(`alert channel "${this.#spec.name}" (${this.#spec.kind}): ${setting} ${message}`);
  }
}

// Half of a pair is fine as a default of named channels of that kind; without any, it is a slip.
function warnIncompleteEnvironment(config: BastionConfig, logger: Logger): void {
  for (const { kind, variables } of PAIRED_VARIABLES) {
    const names = Object.keys(variables) as Array<keyof typeof variables>;
    const set = names.filter((name) => config.alertChannels[variables[name]] !== null);
    const unset = names.filter((name) => config.alertChannels[variables[name]] === null);
    if (set.length === 0 || unset.length === 0) continue;
    if (config.alerts.channels.some((channel) => channel.kind === kind)) continue;
    logger.warn(
      { event: 'alert_channel_incomplete', kind, set, unset },
      `${set.join(', ')} set without ${unset.join(', ')}: no ${kind} alert channel from the environment`,
    );
  }
}
