import nodemailer, { type NodemailerError, type Transporter } from 'nodemailer';
import { formatAlertValue } from '../templates.ts';
import { DeliveryError, type Notification, type Notifier } from '../types.ts';
import { alertSummary, formatLabels, notificationText } from './notification-text.ts';

/** Options of an {@link EmailNotifier}. */
export interface EmailNotifierOptions {
  /** The channel's name (default `email`). */
  name?: string;
  /** `smtp://` (STARTTLS when offered) or `smtps://` (TLS), credentials in the URL. */
  smtpUrl: string;
  /** Recipients (at least one). */
  to: readonly string[];
  /** Sender (default: the SMTP user when it is an address, else `bastion@localhost`). */
  from?: string;
  /** Connection, greeting and idle-socket timeout, ms (default 10 000). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
// Failures of the connection rather than refusals of the message: another attempt may get through.
const TRANSIENT_CODES = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'ETLS', 'EPROXY']);
const STATUS_COLOURS = { firing: '#b3261e', resolved: '#1e7d32' } as const;

/**
 * Sends each notification as an e-mail (text and HTML parts) over SMTP with nodemailer. A 4xx
 * reply or a broken connection is retryable; a 5xx reply (refused recipient or message, failed
 * login) is permanent, except 503 (bad command sequence), which a new connection cures.
 */
export class EmailNotifier implements Notifier {
  readonly name: string;
  readonly kind = 'email' as const;
  readonly #transporter: Transporter;
  readonly #server: string;
  readonly #to: readonly string[];
  readonly #from: string;

  constructor(options: EmailNotifierOptions) {
    this.name = options.name ?? 'email';
    const url = new URL(options.smtpUrl);
    const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#transporter = nodemailer.createTransport({
      url: options.smtpUrl,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      dnsTimeout: timeout,
    });
    this.#server = `${url.protocol}//${url.host}`;
    this.#to = options.to;
    const user = decodeURIComponent(url.username);
    this.#from = options.from ?? `Bastion <${user.includes('@') ? user : 'bastion@localhost'}>`;
  }

  describe(): Record<string, unknown> {
    return { server: this.#server, to: [...this.#to], from: this.#from };
  }

  async send(notification: Notification, options: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.#transporter.sendMail({
        from: this.#from,
        to: [...this.#to],
        subject: emailSubject(notification),
        text: notificationText(notification),
        html: emailHtml(notification),
        headers: { 'X-Bastion-Idempotency-Key': notification.idempotencyKey },
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw deliveryError(this.name, error as NodemailerError);
    }
  }
}

/** The subject of a notification's e-mail, on one line. */
export function emailSubject(notification: Notification): string {
  return `${notification.test ? '[TEST] ' : ''}${notification.title}`.replace(/[\r\n]+/g, ' ');
}

/** The HTML part of a notification's e-mail; every value in it is escaped. */
export function emailHtml(notification: Notification): string {
  const rows = notification.alerts.map((alert) => {
    const cells = [
      `<strong>${escapeHtml(alert.rule)}</strong><br>${escapeHtml(alertSummary(alert))}`,
      escapeHtml(`${alert.status}, ${alert.severity}`),
      escapeHtml(formatAlertValue(alert.value)),
      escapeHtml(alert.endsAt ? `${alert.startsAt} – ${alert.endsAt}` : alert.startsAt),
      escapeHtml(formatLabels(alert.labels)),
    ];
    return `<tr>${cells.map((cell) => `<td style="padding:4px 8px;border-top:1px solid #ddd;vertical-align:top">${cell}</td>`).join('')}</tr>`;
  });
  const link = safeLink(notification.url);
  return [
    '<!doctype html>',
    '<html><body style="font-family:system-ui,sans-serif;color:#222">',
    `<h2 style="color:${STATUS_COLOURS[notification.status]}">${escapeHtml(emailSubject(notification))}</h2>`,
    `<p>Status: <strong>${escapeHtml(notification.status)}</strong> · Severity: <strong>${escapeHtml(notification.severity)}</strong></p>`,
    '<table style="border-collapse:collapse">',
    '<tr><th align="left">Alert</th><th align="left">State</th><th align="left">Value</th><th align="left">Since</th><th align="left">Labels</th></tr>',
    ...rows,
    '</table>',
    link ? `<p><a href="${escapeHtml(link)}">Open in Bastion</a></p>` : '',
    `<p style="color:#777;font-size:12px">Idempotency key: ${escapeHtml(notification.idempotencyKey)}</p>`,
    '</body></html>',
  ].join('\n');
}

function deliveryError(channel: string, error: NodemailerError): DeliveryError {
  const message = `${channel}: ${error.message}`;
  if (typeof error.responseCode === 'number') {
    const permanent = error.permanent ?? error.responseCode >= 500;
    return new DeliveryError(message, { retryable: !permanent, cause: error });
  }
  // No SMTP reply: either the connection failed (retry) or the transport is misconfigured.
  return new DeliveryError(message, { retryable: TRANSIENT_CODES.has(error.code ?? ''), cause: error });
}

// Only web links are put in an href: anything else (javascript:, data:) is dropped.
function safeLink(url: string | null): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
