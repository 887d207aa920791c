import { type Clock, systemClock } from '../../core/clock.ts';
import type { OutboundTransport } from '../../resilience/outbound-client.ts';
import { formatAlertValue } from '../templates.ts';
import { DeliveryError, type Notification, type Notifier, type Severity } from '../types.ts';
import { deliverHttp, responseDetail } from './deliver-http.ts';
import { alertSummary, clipText, formatLabels } from './notification-text.ts';
import { redactUrl } from './redact-url.ts';

/** Options of a {@link SlackNotifier}. */
export interface SlackNotifierOptions {
  /** The channel's name (default `slack`). */
  name?: string;
  /** The incoming-webhook URL (its path is the secret: never shown). */
  url: string;
  /** The outbound client (private networks allowed: channels are the operator's). */
  transport: OutboundTransport;
  /** Dates Retry-After (default: the system clock). */
  clock?: Clock;
  /** Timeout of one delivery, ms (default: the transport's). */
  timeoutMs?: number;
}

/** A Slack block (the subset Bastion sends). */
export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string; emoji: true } }
  | {
      type: 'section';
      text?: { type: 'mrkdwn'; text: string };
      fields?: Array<{ type: 'mrkdwn'; text: string }>;
    }
  | { type: 'context'; elements: Array<{ type: 'mrkdwn'; text: string }> }
  | {
      type: 'actions';
      elements: Array<{ type: 'button'; text: { type: 'plain_text'; text: string }; url: string }>;
    };

/** An incoming-webhook message: `text` is the fallback shown in notifications. */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

// Slack allows 50 blocks per message and 150 characters in a header, 3000 in a section.
const MAX_ALERT_BLOCKS = 20;
const HEADER_CHARS = 150;
const SECTION_CHARS = 3000;
const ICONS: Record<Severity | 'resolved', string> = {
  info: ':information_source:',
  warning: ':warning:',
  critical: ':rotating_light:',
  resolved: ':white_check_mark:',
};

/** Posts each notification to a Slack incoming webhook, which answers 200 `ok`. */
export class SlackNotifier implements Notifier {
  readonly name: string;
  readonly kind = 'slack' as const;
  readonly #url: string;
  readonly #transport: OutboundTransport;
  readonly #clock: Clock;
  readonly #timeoutMs: number | undefined;

  constructor(options: SlackNotifierOptions) {
    this.name = options.name ?? 'slack';
    this.#url = options.url;
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs;
  }

  describe(): Record<string, unknown> {
    return { url: redactUrl(this.#url, 0) };
  }

  async send(notification: Notification, options: { signal?: AbortSignal } = {}): Promise<void> {
    const response = await deliverHttp(
      this.#transport,
      this.name,
      {
        method: 'POST',
        url: this.#url,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(slackMessage(notification)),
        timeoutMs: this.#timeoutMs,
        signal: options.signal,
      },
      this.#clock.now(),
    );
    if (response.body.trim() !== 'ok') {
      throw new DeliveryError(
        `${this.name}: Slack answered HTTP ${response.status} without "ok"${responseDetail(response.body)}`,
        { retryable: false },
      );
    }
  }
}

/** The Slack message of a notification; every value is escaped for mrkdwn. */
export function slackMessage(notification: Notification): SlackMessage {
  const prefix = notification.test ? '[TEST] ' : '';
  const icon = ICONS[notification.status === 'resolved' ? 'resolved' : notification.severity];
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: clipText(`${prefix}${notification.title}`, HEADER_CHARS),
        emoji: true,
      },
    },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Severity*\n${icon} ${notification.severity}` },
        { type: 'mrkdwn', text: `*Status*\n${notification.status}` },
      ],
    },
  ];
  for (const alert of notification.alerts.slice(0, MAX_ALERT_BLOCKS)) {
    const lines = [
      `*${escapeMrkdwn(alert.rule)}* (${alert.status}, ${alert.severity})`,
      escapeMrkdwn(alertSummary(alert)),
      `Value: \`${formatAlertValue(alert.value)}\``,
    ];
    if (Object.keys(alert.labels).length > 0)
      lines.push(`Labels: ${escapeMrkdwn(formatLabels(alert.labels))}`);
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: clipText(lines.join('\n'), SECTION_CHARS) },
    });
  }
  const hidden = notification.alerts.length - MAX_ALERT_BLOCKS;
  if (hidden > 0) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `…and ${hidden} more alerts` }] });
  }
  if (notification.url) {
    blocks.push({
      type: 'actions',
      elements: [
        { type: 'button', text: { type: 'plain_text', text: 'Open in Bastion' }, url: notification.url },
      ],
    });
  }
  return { text: escapeMrkdwn(`${prefix}${notification.title}`), blocks };
}

// Slack's three control characters: without escaping, a label could mention @channel or forge a link.
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
