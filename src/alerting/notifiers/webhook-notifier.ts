import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '../../core/clock.ts';
import type { OutboundTransport } from '../../resilience/outbound-client.ts';
import { alertView } from '../alert-view.ts';
import type { Notification, Notifier } from '../types.ts';
import { deliverHttp } from './deliver-http.ts';
import { redactUrl } from './redact-url.ts';

/** Options of a {@link WebhookNotifier}. */
export interface WebhookNotifierOptions {
  /** The channel's name (default `webhook`). */
  name?: string;
  /** Receiver's http(s) URL. */
  url: string;
  /** Key of the `X-Bastion-Signature` HMAC; null sends no signature. */
  secret: string | null;
  /** The outbound client (private networks allowed: channels are the operator's). */
  transport: OutboundTransport;
  /** Dates the signature (default: the system clock). */
  clock?: Clock;
  /** Timeout of one delivery, ms (default: the transport's). */
  timeoutMs?: number;
}

/** The JSON body a webhook receives (snake_case, as Bastion's API). */
export interface WebhookPayload {
  version: '1';
  idempotency_key: string;
  group_key: string;
  status: 'firing' | 'resolved';
  severity: string;
  title: string;
  common_labels: Readonly<Record<string, string>>;
  url: string | null;
  created_at: string;
  test: boolean;
  alerts: Array<ReturnType<typeof alertView>>;
}

/** Options of {@link verifyWebhookSignature}. */
export interface VerifyWebhookOptions {
  /** Largest accepted distance between the signature's time and now, seconds (default 300). */
  toleranceSeconds?: number;
  /** Now, ms since the epoch (default `Date.now()`). */
  now?: number;
}

const DEFAULT_TOLERANCE_SECONDS = 300;
const SIGNATURE_HEX = /^[0-9a-f]{64}$/i;

/**
 * Posts each notification as JSON, with `X-Bastion-Idempotency-Key` (receivers drop repeats) and,
 * when a secret is set, `X-Bastion-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`
 * (receivers check it with {@link verifyWebhookSignature}; the time stops replays).
 */
export class WebhookNotifier implements Notifier {
  readonly name: string;
  readonly kind = 'webhook' as const;
  readonly #url: string;
  readonly #secret: string | null;
  readonly #transport: OutboundTransport;
  readonly #clock: Clock;
  readonly #timeoutMs: number | undefined;

  constructor(options: WebhookNotifierOptions) {
    this.name = options.name ?? 'webhook';
    this.#url = options.url;
    this.#secret = options.secret;
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs;
  }

  describe(): Record<string, unknown> {
    return { url: redactUrl(this.#url, 1), signed: this.#secret !== null };
  }

  async send(notification: Notification, options: { signal?: AbortSignal } = {}): Promise<void> {
    const body = JSON.stringify(webhookPayload(notification));
    const now = this.#clock.now();
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-Bastion-Idempotency-Key': notification.idempotencyKey,
    };
    if (this.#secret !== null) {
      headers['X-Bastion-Signature'] = signWebhookBody(body, this.#secret, Math.floor(now / 1000));
    }
    await deliverHttp(
      this.#transport,
      this.name,
      { method: 'POST', url: this.#url, headers, body, timeoutMs: this.#timeoutMs, signal: options.signal },
      now,
    );
  }
}

/** The webhook body of a notification. */
export function webhookPayload(notification: Notification): WebhookPayload {
  return {
    version: '1',
    idempotency_key: notification.idempotencyKey,
    group_key: notification.groupKey,
    status: notification.status,
    severity: notification.severity,
    title: notification.title,
    common_labels: notification.commonLabels,
    url: notification.url,
    created_at: notification.createdAt,
    test: notification.test,
    alerts: notification.alerts.map(alertView),
  };
}

/** The `X-Bastion-Signature` value of `body` sent at `timestampSeconds`. */
export function signWebhookBody(body: string, secret: string, timestampSeconds: number): string {
  return `t=${timestampSeconds},v1=${hmacHex(secret, `${timestampSeconds}.${body}`)}`;
}

/**
 * Whether `header` (`X-Bastion-Signature`) signs the raw `body` with `secret` and was made
 * within `toleranceSeconds` of now. Any `v1` entry may match (several during a key rotation);
 * the comparison is constant-time.
 */
export function verifyWebhookSignature(
  header: string | null | undefined,
  body: string,
  secret: string,
  options: VerifyWebhookOptions = {},
): boolean {
  if (!header) return false;
  let timestamp: string | null = null;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const separator = part.indexOf('=');
    if (separator < 0) continue;
    const key = part.slice(0, separator).trim();
    const value = part.slice(separator + 1).trim();
    if (key === 't') timestamp = value;
    else if (key === 'v1' && SIGNATURE_HEX.test(value)) candidates.push(value);
  }
  if (timestamp === null || !/^\d{1,12}$/.test(timestamp) || candidates.length === 0) return false;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) return false;
  const expected = Buffer.from(hmacHex(secret, `${timestamp}.${body}`), 'hex');
  let matched = false;
  // Every candidate is compared, so the time taken does not tell which one matched.
  for (const candidate of candidates) {
    if (timingSafeEqual(expected, Buffer.from(candidate, 'hex'))) matched = true;
  }
  return matched;
}

function hmacHex(secret: string, data: string): string {
  return createHmac('sha256', secret).update(data, 'utf8').digest('hex');
}
