import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../core/clock.ts';
import { sha256Hex } from '../core/hash.ts';
import { newId } from '../core/ids.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import { type Aggregation, type AlertRule, breaches } from './rules.ts';
import type { Silences } from './silences.ts';
import { renderTemplate } from './templates.ts';
import type { AlertSnapshot, AlertStatus, Notification, Severity } from './types.ts';

/** Where rule values come from (metric history). */
export interface SeriesSource {
  evaluate(series: string, aggregation: Aggregation, windowMs: number, now?: number): Promise<number | null>;
}

/** Where notifications go (the outbox). */
export interface NotificationSink {
  enqueue(channel: string, notification: Notification): Promise<void>;
}

/** Grouping and timing, as Alertmanager's route has them. */
export interface GroupingSettings {
  /** How long a new group waits for more alerts before its first notification. */
  groupWaitMs: number;
  /** How long a group waits after a notification before telling about changes. */
  groupIntervalMs: number;
  /** How often a group still firing is notified again (a rule's own repeat_interval wins). */
  repeatIntervalMs: number;
  /** Channels of critical alerts not acknowledged in time, when the rule names none. */
  escalation: { afterMs: number; channels: readonly string[] } | null;
  /** Console address put in notifications. */
  consoleUrl: string | null;
}

/** A change of an alert, for live events and the history. */
export interface AlertChange {
  event: 'pending' | 'firing' | 'resolved' | 'acknowledged' | 'escalated' | 'silenced' | 'inhibited';
  alert: AlertSnapshot;
}

/** One alert's state (one per fingerprint). */
interface AlertState {
  fingerprint: string;
  rule: AlertRule;
  status: AlertStatus;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number | null;
  pendingSince: number | null;
  startedAt: number | null;
  endedAt: number | null;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  escalatedAt: number | null;
  /** A firing notification went out for this alert (so its resolution is told too). */
  notified: boolean;
  /** Muted by a silence or an inhibiting critical alert in this cycle. */
  muted: 'silenced' | 'inhibited' | null;
}

/** A notification group's timing state. */
interface GroupState {
  key: string;
  firstSeenAt: number;
  lastSentAt: number | null;
  lastDigest: string | null;
}

/**
 * Evaluates alert rules and turns them into notifications, like Prometheus and Alertmanager
 * together: each rule's value over its window (and its second window, for burn rates) is
 * compared with the threshold; a breach makes the alert pending, and firing once it has lasted
 * `for`; it resolves when the breach ends. Alerts are identified by a fingerprint (rule and
 * labels), deduplicated, grouped (`group_by`, group wait, group interval, repeat interval),
 * muted by silences and by a firing critical alert of the same `group` (inhibition), and
 * escalated to further channels when a critical alert is not acknowledged in time. State lives
 * in the database, so another instance can take over; notifications go to the outbox.
 */
export class AlertEngine {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  readonly #series: SeriesSource;
  readonly #sink: NotificationSink;
  readonly #silences: Silences;
  readonly #logger: Logger;
  readonly #settings: GroupingSettings;
  readonly #onChange: (change: AlertChange) => void;
  readonly #alerts = new Map<string, AlertState>();
  readonly #groups = new Map<string, GroupState>();
  readonly #transitions: Counter<'event' | 'severity'>;
  #rules: AlertRule[] = [];

  constructor(options: {
    db: Kysely<DatabaseSchema>;
    clock: Clock;
    series: SeriesSource;
    sink: NotificationSink;
    silences: Silences;
    logger: Logger;
    registry: Registry;
    settings: GroupingSettings;
    onChange?: (change: AlertChange) => void;
  }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#series = options.series;
    this.#sink = options.sink;
    this.#silences = options.silences;
    this.#logger = options.logger;
    this.#settings = options.settings;
    this.#onChange = options.onChange ?? (() => {});
    this.#transitions = new Counter({
      name: 'bastion_alert_transitions_total',
      help: 'Alert state changes (pending, firing, resolved, acknowledged, escalated) by severity.',
      labelNames: ['event', 'severity'],
      registers: [options.registry],
    });
    const alerts = this.#alerts;
    new Gauge({
      name: 'bastion_alerts_firing',
      help: 'Alerts firing now, by severity.',
      labelNames: ['severity'],
      registers: [options.registry],
      collect() {
        const counts: Record<Severity, number> = { info: 0, warning: 0, critical: 0 };
        for (const alert of alerts.values()) if (alert.status === 'firing') counts[alert.rule.severity] += 1;
        for (const [severity, count] of Object.entries(counts)) this.set({ severity }, count);
      },
    });
  }

  /** The rules to evaluate (defaults, config file, SLOs and API rules, already compiled). */
  setRules(rules: readonly AlertRule[]): void {
    this.#rules = [...rules];
    const names = new Set(rules.map((rule) => rule.name));
    // Alerts of rules that are gone or disabled resolve at the next evaluation.
    for (const alert of this.#alerts.values()) {
      const current = rules.find((rule) => rule.name === alert.rule.name);
      if (current) alert.rule = current;
      else if (!names.has(alert.rule.name)) alert.rule = { ...alert.rule, enabled: false };
    }
  }

  /** Loads the alerts and groups another instance left (on taking over evaluation). */
  async load(): Promise<void> {
    const rows = await this.#db
      .selectFrom('alerts')
      .selectAll()
      .where('status', 'in', ['pending', 'firing'])
      .execute();
    this.#alerts.clear();
    for (const row of rows) {
      const rule = this.#rules.find((candidate) => candidate.name === row.rule_name);
      if (!rule) continue;
      this.#alerts.set(row.fingerprint, {
        fingerprint: row.fingerprint,
        rule,
        status: row.status as AlertStatus,
        labels: JSON.parse(row.labels) as Record<string, string>,
        annotations: JSON.parse(row.annotations) as Record<string, string>,
        value: row.value,
        pendingSince: timeOf(row.pending_since),
        startedAt: timeOf(row.started_at),
        endedAt: null,
        acknowledgedAt: timeOf(row.acknowledged_at),
        acknowledgedBy: row.acknowledged_by,
        escalatedAt: timeOf(row.escalated_at),
        notified: row.status === 'firing',
        muted: null,
      });
    }
    this.#groups.clear();
    for (const row of await this.#db.selectFrom('alert_groups').selectAll().execute()) {
      this.#groups.set(row.group_key, {
        key: row.group_key,
        firstSeenAt: Date.parse(row.first_seen_at),
        lastSentAt: timeOf(row.last_sent_at),
        lastDigest: row.last_digest,
      });
    }
  }

  /** One evaluation cycle: every rule, then notifications. */
  async evaluate(): Promise<void> {
    const now = this.#clock.now();
    await this.#silences.refresh();
    await this.#syncAcknowledgements();
    for (const rule of this.#rules) {
      try {
        await this.#evaluateRule(rule, now);
      } catch (error) {
        this.#logger.error({ err: error, rule: rule.name }, 'alert rule evaluation failed');
      }
    }
    // Rules that were removed or disabled: their alerts resolve.
    for (const alert of [...this.#alerts.values()]) {
      if (!alert.rule.enabled && alert.status !== 'resolved') await this.#resolve(alert, now);
    }
    this.#applyMutes();
    await this.#escalate(now);
    await this.#dispatch(now);
  }

  /** Alerts pending or firing now (and resolved ones not yet notified). */
  active(): AlertSnapshot[] {
    return [...this.#alerts.values()]
      .filter((alert) => alert.status !== 'resolved')
      .map((alert) => this.#snapshot(alert));
  }

  /** Acknowledges a firing alert (stops its escalation and repeats); false when there is none. */
  async acknowledge(fingerprint: string, by: string): Promise<boolean> {
    const alert = this.#alerts.get(fingerprint);
    if (alert?.status !== 'firing' || alert.acknowledgedAt !== null) return false;
    alert.acknowledgedAt = this.#clock.now();
    alert.acknowledgedBy = by;
    await this.#persist(alert);
    await this.#record(alert, 'acknowledged', { by });
    return true;
  }

  // Acknowledgements made through another instance are written to the database only.
  async #syncAcknowledgements(): Promise<void> {
    const unacknowledged = [...this.#alerts.values()].filter(
      (alert) => alert.status === 'firing' && alert.acknowledgedAt === null,
    );
    if (unacknowledged.length === 0) return;
    const rows = await this.#db
      .selectFrom('alerts')
      .select(['fingerprint', 'acknowledged_at', 'acknowledged_by'])
      .where(
        'fingerprint',
        'in',
        unacknowledged.map((alert) => alert.fingerprint),
      )
      .where('acknowledged_at', 'is not', null)
      .execute();
    for (const row of rows) {
      const alert = this.#alerts.get(row.fingerprint);
      if (!alert || alert.acknowledgedAt !== null) continue;
      alert.acknowledgedAt = timeOf(row.acknowledged_at);
      alert.acknowledgedBy = row.acknowledged_by;
      await this.#record(alert, 'acknowledged', { by: row.acknowledged_by });
    }
  }

  async #evaluateRule(rule: AlertRule, now: number): Promise<void> {
    if (!rule.enabled) return;
    const value = await this.#series.evaluate(rule.series, rule.aggregation, rule.windowMs, now);
    let breached = breaches(rule, value);
    if (breached && rule.alsoWindowMs !== null) {
      breached = breaches(
        rule,
        await this.#series.evaluate(rule.series, rule.aggregation, rule.alsoWindowMs, now),
      );
    }
    const labels = { ...rule.labels, alertname: rule.name, severity: rule.severity };
    const fingerprint = fingerprintOf(rule.name, labels);
    let alert = this.#alerts.get(fingerprint);
    if (!breached) {
      if (alert && alert.status !== 'resolved') await this.#resolve(alert, now, value);
      return;
    }
    if (!alert || alert.status === 'resolved') {
      alert = {
        fingerprint,
        rule,
        status: 'pending',
        labels,
        annotations: {},
        value,
        pendingSince: now,
        startedAt: null,
        endedAt: null,
        acknowledgedAt: null,
        acknowledgedBy: null,
        escalatedAt: null,
        notified: false,
        muted: null,
      };
      this.#alerts.set(fingerprint, alert);
      alert.annotations = this.#annotations(rule, labels, value);
      if (rule.forMs > 0) {
        await this.#persist(alert);
        await this.#record(alert, 'pending');
        return;
      }
    }
    alert.value = value;
    alert.annotations = this.#annotations(rule, labels, value);
    if (alert.status === 'pending' && now - (alert.pendingSince ?? now) >= rule.forMs) {
      alert.status = 'firing';
      alert.startedAt = now;
      await this.#persist(alert);
      await this.#record(alert, 'firing');
    }
  }

  async #resolve(alert: AlertState, now: number, value: number | null = alert.value): Promise<void> {
    const wasFiring = alert.status === 'firing';
    alert.value = value;
    alert.status = 'resolved';
    alert.endedAt = now;
    await this.#persist(alert);
    if (wasFiring) await this.#record(alert, 'resolved');
    // A pending alert that never fired disappears quietly; a resolved one stays until told.
    if (!wasFiring || !alert.notified) this.#alerts.delete(alert.fingerprint);
  }

  // Silences and inhibition (a firing critical alert mutes the warnings and infos of its group).
  #applyMutes(): void {
    const criticalGroups = new Set<string>();
    for (const alert of this.#alerts.values()) {
      if (
        alert.status === 'firing' &&
        alert.rule.severity === 'critical' &&
        alert.labels.group !== undefined
      ) {
        criticalGroups.add(alert.labels.group);
      }
    }
    for (const alert of this.#alerts.values()) {
      const before = alert.muted;
      if (this.#silences.muting(alert.labels)) alert.muted = 'silenced';
      else if (
        alert.rule.severity !== 'critical' &&
        alert.labels.group !== undefined &&
        criticalGroups.has(alert.labels.group)
      ) {
        alert.muted = 'inhibited';
      } else alert.muted = null;
      if (alert.muted !== null && alert.muted !== before && alert.status === 'firing') {
        void this.#record(alert, alert.muted);
      }
    }
  }

  async #escalate(now: number): Promise<void> {
    for (const alert of this.#alerts.values()) {
      const escalation = alert.rule.escalation ?? this.#settings.escalation;
      if (
        escalation === null ||
        alert.status !== 'firing' ||
        alert.rule.severity !== 'critical' ||
        alert.acknowledgedAt !== null ||
        alert.escalatedAt !== null ||
        alert.muted !== null ||
        now - (alert.startedAt ?? now) < escalation.afterMs
      ) {
        continue;
      }
      alert.escalatedAt = now;
      const snapshot = this.#snapshot(alert);
      const notification = this.#notification(
        `escalation:${alert.fingerprint}:${alert.startedAt}`,
        'escalation',
        [snapshot],
        now,
      );
      notification.title = `[ESCALATED] ${notification.title}`;
      for (const channel of escalation.channels) await this.#sink.enqueue(channel, notification);
      await this.#persist(alert);
      await this.#record(alert, 'escalated', { channels: escalation.channels });
    }
  }

  async #dispatch(now: number): Promise<void> {
    const groups = new Map<string, AlertState[]>();
    for (const alert of this.#alerts.values()) {
      if (alert.status === 'pending' || alert.muted !== null) continue;
      if (alert.status === 'resolved' && !alert.notified) continue;
      const key = groupKeyOf(alert);
      const members = groups.get(key);
      if (members) members.push(alert);
      else groups.set(key, [alert]);
    }
    for (const [key, members] of groups) {
      const firing = members.filter((alert) => alert.status === 'firing');
      let group = this.#groups.get(key);
      if (!group) {
        if (firing.length === 0) {
          for (const alert of members) this.#alerts.delete(alert.fingerprint);
          continue;
        }
        group = { key, firstSeenAt: now, lastSentAt: null, lastDigest: null };
        this.#groups.set(key, group);
        await this.#saveGroup(group);
      }
      const digest = sha256Hex(
        members
          .map((alert) => `${alert.fingerprint}:${alert.status}`)
          .sort()
          .join(','),
      ).slice(0, 32);
      const repeatMs = Math.min(
        ...members.map((alert) => alert.rule.repeatIntervalMs ?? this.#settings.repeatIntervalMs),
      );
      const due =
        group.lastSentAt === null
          ? now - group.firstSeenAt >= this.#settings.groupWaitMs
          : digest !== group.lastDigest
            ? now - group.lastSentAt >= this.#settings.groupIntervalMs
            : firing.length > 0 &&
              firing.some((alert) => alert.acknowledgedAt === null) &&
              now - group.lastSentAt >= repeatMs;
      if (!due) continue;
      // Deterministic from the group's stored state: an instance taking over mid-way makes the
      // same key, and the outbox keeps one notification per key.
      const key32 = sha256Hex(key).slice(0, 16);
      const idempotencyKey = `${key32}:${digest}:${group.lastSentAt ?? 'first'}`;
      const notification = this.#notification(
        idempotencyKey,
        key,
        members.map((alert) => this.#snapshot(alert)),
        now,
      );
      for (const channel of channelsOf(members)) await this.#sink.enqueue(channel, notification);
      group.lastSentAt = now;
      group.lastDigest = digest;
      for (const alert of members) {
        if (alert.status === 'firing') alert.notified = true;
        else this.#alerts.delete(alert.fingerprint);
      }
      if (firing.length === 0) {
        this.#groups.delete(key);
        await this.#db.deleteFrom('alert_groups').where('group_key', '=', key).execute();
      } else await this.#saveGroup(group);
      for (const alert of members)
        await this.#recordHistory(alert, 'notified', { channels: channelsOf([alert]) });
    }
  }

  #notification(
    idempotencyKey: string,
    groupKey: string,
    alerts: AlertSnapshot[],
    now: number,
  ): Notification {
    const firing = alerts.filter((alert) => alert.status === 'firing');
    const severity = highest(alerts.map((alert) => alert.severity));
    const status = firing.length > 0 ? 'firing' : 'resolved';
    const first = alerts[0] as AlertSnapshot;
    const title =
      alerts.length === 1
        ? `[${status.toUpperCase()}:${severity}] ${first.rule}`
        : `[${status.toUpperCase()}:${severity}] ${firing.length} firing, ${alerts.length - firing.length} resolved: ${[...new Set(alerts.map((alert) => alert.rule))].join(', ')}`;
    return {
      idempotencyKey,
      groupKey,
      status,
      severity,
      commonLabels: commonLabels(alerts.map((alert) => alert.labels)),
      alerts,
      title,
      url: this.#settings.consoleUrl,
      createdAt: new Date(now).toISOString(),
      test: false,
    };
  }

  #annotations(
    rule: AlertRule,
    labels: Record<string, string>,
    value: number | null,
  ): Record<string, string> {
    const data = { value, threshold: rule.threshold, labels, rule: rule.name, series: rule.series };
    return Object.fromEntries(
      Object.entries(rule.annotations).map(([name, text]) => [name, renderTemplate(text, data)]),
    );
  }

  #snapshot(alert: AlertState): AlertSnapshot {
    return {
      fingerprint: alert.fingerprint,
      rule: alert.rule.name,
      status: alert.status === 'resolved' ? 'resolved' : 'firing',
      severity: alert.rule.severity,
      labels: alert.labels,
      annotations: alert.annotations,
      value: alert.value,
      startsAt: new Date(alert.startedAt ?? alert.pendingSince ?? this.#clock.now()).toISOString(),
      endsAt: alert.endedAt === null ? null : new Date(alert.endedAt).toISOString(),
      acknowledged: alert.acknowledgedAt !== null,
    };
  }

  async #persist(alert: AlertState): Promise<void> {
    const row = {
      rule_name: alert.rule.name,
      status: alert.status,
      severity: alert.rule.severity,
      labels: JSON.stringify(alert.labels),
      annotations: JSON.stringify(alert.annotations),
      value: alert.value,
      pending_since: isoOf(alert.pendingSince),
      started_at: isoOf(alert.startedAt),
      ended_at: isoOf(alert.endedAt),
      acknowledged_by: alert.acknowledgedBy,
      acknowledged_at: isoOf(alert.acknowledgedAt),
      escalated_at: isoOf(alert.escalatedAt),
      updated_at: new Date(this.#clock.now()).toISOString(),
    };
    await this.#db
      .insertInto('alerts')
      .values({ fingerprint: alert.fingerprint, ...row })
      .onConflict((conflict) => conflict.column('fingerprint').doUpdateSet(row))
      .execute();
  }

  async #saveGroup(group: GroupState): Promise<void> {
    const row = {
      first_seen_at: new Date(group.firstSeenAt).toISOString(),
      last_sent_at: isoOf(group.lastSentAt),
      last_digest: group.lastDigest,
    };
    await this.#db
      .insertInto('alert_groups')
      .values({ group_key: group.key, ...row })
      .onConflict((conflict) => conflict.column('group_key').doUpdateSet(row))
      .execute();
  }

  async #record(
    alert: AlertState,
    event: AlertChange['event'],
    details: Record<string, unknown> = {},
  ): Promise<void> {
    this.#transitions.inc({ event, severity: alert.rule.severity });
    await this.#recordHistory(alert, event, details);
    this.#logger.info(
      {
        event: `alert_${event}`,
        alert: alert.rule.name,
        fingerprint: alert.fingerprint,
        severity: alert.rule.severity,
        value: alert.value,
      },
      `alert ${event}: ${alert.rule.name}`,
    );
    try {
      this.#onChange({ event, alert: this.#snapshot(alert) });
    } catch (error) {
      this.#logger.error({ err: error }, 'alert change listener failed');
    }
  }

  async #recordHistory(alert: AlertState, event: string, details: Record<string, unknown>): Promise<void> {
    await this.#db
      .insertInto('alert_history')
      .values({
        id: newId(this.#clock.now()),
        fingerprint: alert.fingerprint,
        rule_name: alert.rule.name,
        event,
        severity: alert.rule.severity,
        value: alert.value,
        details: JSON.stringify({ labels: alert.labels, annotations: alert.annotations, ...details }),
        at: new Date(this.#clock.now()).toISOString(),
      })
      .execute();
  }
}

/** The alert's identity: its rule and labels, whatever order the labels come in. */
export function fingerprintOf(rule: string, labels: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((name) => [name, labels[name]]);
  return sha256Hex(JSON.stringify([rule, sorted])).slice(0, 32);
}

function groupKeyOf(alert: AlertState): string {
  const values = alert.rule.groupBy.map((name) => `${name}=${alert.labels[name] ?? ''}`);
  return `${[...alert.rule.channels].sort().join('|')}/{${values.join(',')}}`;
}

function channelsOf(alerts: readonly AlertState[]): string[] {
  return [...new Set(alerts.flatMap((alert) => alert.rule.channels))].sort();
}

function commonLabels(sets: ReadonlyArray<Readonly<Record<string, string>>>): Record<string, string> {
  const [first, ...rest] = sets;
  if (!first) return {};
  return Object.fromEntries(
    Object.entries(first).filter(([name, value]) => rest.every((labels) => labels[name] === value)),
  );
}

const SEVERITY_ORDER: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

function highest(severities: readonly Severity[]): Severity {
  return severities.reduce<Severity>(
    (top, next) => (SEVERITY_ORDER[next] > SEVERITY_ORDER[top] ? next : top),
    'info',
  );
}

function timeOf(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}

function isoOf(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
