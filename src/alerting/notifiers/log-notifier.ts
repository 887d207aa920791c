import type { Logger } from 'pino';
import type { Notification, Notifier } from '../types.ts';

/** Options of a {@link LogNotifier}. */
export interface LogNotifierOptions {
  /** The channel's name (default `log`). */
  name?: string;
  /** Where the lines go. */
  logger: Logger;
}

/**
 * Writes one structured line per notification: warn when firing, info when resolved. Always
 * configured, so an alert is never lost for want of a channel.
 */
export class LogNotifier implements Notifier {
  readonly name: string;
  readonly kind = 'log' as const;
  readonly #logger: Logger;

  constructor(options: LogNotifierOptions) {
    this.name = options.name ?? 'log';
    this.#logger = options.logger;
  }

  describe(): Record<string, unknown> {
    return {};
  }

  async send(notification: Notification): Promise<void> {
    const line = {
      event: 'alert_notification',
      channel: this.name,
      status: notification.status,
      severity: notification.severity,
      alerts: [...new Set(notification.alerts.map((alert) => alert.rule))],
      alert_count: notification.alerts.length,
      group_key: notification.groupKey,
      idempotency_key: notification.idempotencyKey,
      test: notification.test,
    };
    if (notification.status === 'firing') this.#logger.warn(line, notification.title);
    else this.#logger.info(line, notification.title);
  }
}
