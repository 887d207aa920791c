import { type Clock, systemClock } from '../../core/clock.ts';
import type { OutboundTransport } from '../../resilience/outbound-client.ts';
import { formatAlertValue } from '../templates.ts';
import { DeliveryError, type Notification, type Notifier, type Severity } from '../types.ts';
import { deliverHttp, responseDetail } from './deliver-http.ts';
import { alertSummary, clipText } from './notification-text.ts';
import { redactUrl } from './redact-url.ts';

/** Pushover's public message API. */
export const PUSHOVER_API_URL = 'https://api.pushover.net/1/messages.json';

/** Options of a {@link PushoverNotifier}. */
export interface PushoverNotifierOptions {
  /** The channel's name (default `pushover`). */
  name?: string;
  /** Application token (secret). */
  token: string;
  /** User or group key (secret). */
  user: string;
  /** Message API URL (default {@link PUSHOVER_API_URL}). */
  apiUrl?: string;
  /** The outbound client (private networks allowed: channels are the operator's). */
  transport: OutboundTransport;
  /** Dates Retry-After (default: the system clock). */
  clock?: Clock;
  /** Timeout of one delivery, ms (default: the transport's). */
  timeoutMs?: number;
}

/** Pushover priority by severity: info is quiet, critical bypasses the user's quiet hours. */
export const PUSHOVER_PRIORITY: Readonly<Record<Severity, number>> = { info: -1, warning: 0, critical: 1 };

// Pushover refuses longer fields (HTTP 400), which no retry would cure: cut them instead.
const TITLE_CHARS = 250;
const MESSAGE_CHARS = 1024;
const URL_CHARS = 512;

/** Posts each notification to Pushover's message API (form-encoded), which answers `{"status":1}`. */
export class PushoverNotifier implements Notifier {
  readonly name: string;
  readonly kind = 'pushover' as const;
  readonly #token: string;
  readonly #user: string;
  readonly #apiUrl: string;
  readonly #transport: OutboundTransport;
  readonly #clock: Clock;
  readonly #timeoutMs: number | undefined;

  constructor(options: PushoverNotifierOptions) {
    this.name = options.name ?? 'pushover';
    this.#token = options.token;
    this.#user = options.user;
    this.#apiUrl = options.apiUrl ?? PUSHOVER_API_URL;
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs;
  }

  describe(): Record<string, unknown> {
    return { url: redactUrl(this.#apiUrl, 1) };
  }

  async send(notification: Notification, options: { signal?: AbortSignal } = {}): Promise<void> {
    const form = pushoverForm(notification, this.#token, this.#user);
    const response = await deliverHttp(
      this.#transport,
      this.name,
      {
        method: 'POST',
        url: this.#apiUrl,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        timeoutMs: this.#timeoutMs,
        signal: options.signal,
      },
      this.#clock.now(),
    );
    if (!acknowledged(response.body)) {
      throw new DeliveryError(
        `${this.name}: Pushover answered HTTP ${response.status} without status 1${responseDetail(response.body)}`,
        { retryable: false },
      );
    }
  }
}

/** The form Pushover receives for a notification. */
export function pushoverForm(notification: Notification, token: string, user: string): URLSearchParams {
  const form = new URLSearchParams({
    token,
    user,
    title: clipText(`${notification.test ? '[TEST] ' : ''}${notification.title}`, TITLE_CHARS),
    message: clipText(pushoverMessage(notification), MESSAGE_CHARS),
    priority: String(PUSHOVER_PRIORITY[notification.severity]),
  });
  const created = Date.parse(notification.createdAt);
  if (Number.isFinite(created)) form.set('timestamp', String(Math.floor(created / 1000)));
  if (notification.url && notification.url.length <= URL_CHARS) {
    form.set('url', notification.url);
    form.set('url_title', 'Open in Bastion');
  }
  return form;
}

function pushoverMessage(notification: Notification): string {
  return notification.alerts
    .map(
      (alert) =>
        `${alert.status === 'resolved' ? 'Resolved' : alert.severity}: ${alertSummary(alert)} (value ${formatAlertValue(alert.value)})`,
    )
    .join('\n');
}

function acknowledged(body: string): boolean {
  try {
    return (JSON.parse(body) as { status?: unknown }).status === 1;
  } catch {
    return false;
  }
}
