/** How urgent an alert is; channels map it to their own priority (Pushover, email subject). */
export type Severity = 'info' | 'warning' | 'critical';

/** An alert's life cycle, as Alertmanager has it: pending until `for` elapses, then firing, then resolved. */
export type AlertStatus = 'pending' | 'firing' | 'resolved';

/** The channel kinds Bastion can notify through; a configured channel has a name and one kind. */
export type ChannelKind = 'webhook' | 'slack' | 'email' | 'pushover' | 'log';

export const CHANNEL_KINDS: readonly ChannelKind[] = ['webhook', 'slack', 'email', 'pushover', 'log'];

/** One alert as channels see it (a snapshot; channels never change it). */
export interface AlertSnapshot {
  /** Stable identity of the alert: hash of its rule name and labels. */
  fingerprint: string;
  rule: string;
  status: 'firing' | 'resolved';
  severity: Severity;
  labels: Readonly<Record<string, string>>;
  /** Templated already (`{{ $value }}`, `{{ $labels.x }}` filled in). */
  annotations: Readonly<Record<string, string>>;
  /** The value that crossed the threshold (the latest evaluated value). */
  value: number | null;
  /** ISO-8601. */
  startsAt: string;
  /** ISO-8601, when resolved. */
  endsAt: string | null;
  acknowledged: boolean;
}

/**
 * One notification: a group of alerts sent together to one channel (grouping by the rule's
 * `group_by` labels, as Alertmanager does).
 */
export interface Notification {
  /** Unique per notification and stable across retries: receivers deduplicate on it. */
  idempotencyKey: string;
  /** The group's key (its `group_by` label values). */
  groupKey: string;
  /** 'firing' when any alert in the group fires, else 'resolved'. */
  status: 'firing' | 'resolved';
  /** The highest severity in the group. */
  severity: Severity;
  /** Labels every alert of the group shares. */
  commonLabels: Readonly<Record<string, string>>;
  alerts: readonly AlertSnapshot[];
  /** A one-line summary for subjects and titles. */
  title: string;
  /** Where an operator can see more (the console), when configured. */
  url: string | null;
  /** ISO-8601, when the notification was created. */
  createdAt: string;
  /** True for a test sent from a channel's test endpoint. */
  test: boolean;
}

/** Why a delivery failed, and whether trying again later can help. */
export class DeliveryError extends Error {
  readonly retryable: boolean;
  /** Seconds the receiver asked us to wait (Retry-After), when it did. */
  readonly retryAfterSeconds: number | null;

  constructor(
    message: string,
    options: { retryable: boolean; retryAfterSeconds?: number | null; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = 'DeliveryError';
    this.retryable = options.retryable;
    this.retryAfterSeconds = options.retryAfterSeconds ?? null;
  }
}

/** A configured channel: sends one notification, or throws a {@link DeliveryError}. */
export interface Notifier {
  /** The channel's name (its kind for the channels configured from the environment). */
  readonly name: string;
  readonly kind: ChannelKind;
  /** What the channel points at, without secrets (for the channel list). */
  describe(): Record<string, unknown>;
  send(notification: Notification, options?: { signal?: AbortSignal }): Promise<void>;
}
