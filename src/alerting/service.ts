import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BastionConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import { parseDuration } from './durations.ts';
import { type AlertChange, AlertEngine, type SeriesSource } from './engine.ts';
import { Lease } from './lease.ts';
import { NotificationOutbox } from './outbox.ts';
import {
  type AlertRule,
  type AlertRuleInput,
  compileRule,
  configuredRuleInputs,
  type RuleContext,
} from './rules.ts';
import { Silences } from './silences.ts';
import type { AlertSnapshot, Notification, Notifier } from './types.ts';

/** A series the rules may use. */
export interface SeriesCatalog extends SeriesSource {
  list(): ReadonlyArray<{ name: string }>;
}

/** An entry of the alert history. */
export interface AlertHistoryEntry {
  id: string;
  fingerprint: string;
  rule: string;
  event: string;
  severity: string;
  value: number | null;
  details: Record<string, unknown>;
  at: string;
}

/** A rule as the API lists it. */
export interface ListedRule extends AlertRuleInput {
  source: AlertRule['source'];
}

const LEASE_NAME = 'alerting';

/**
 * Alerting, composed: the rules (Bastion's defaults, SLO burn rates, the config file and the
 * API), one instance at a time evaluating them and delivering notifications (the database
 * lease; another instance takes over within the lease's TTL when it dies), the outbox, silences
 * and the channels. Rule changes made through the API reach the evaluating instance at its next
 * lease renewal.
 */
export class AlertService {
  readonly engine: AlertEngine;
  readonly outbox: NotificationOutbox;
  readonly silences: Silences;
  readonly #config: BastionConfig['alerts'];
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #series: SeriesCatalog;
  readonly #notifiers: ReadonlyMap<string, Notifier>;
  readonly #lease: Lease;
  readonly #fixedRules: AlertRule[];
  #apiRules: AlertRule[] = [];
  #leader = false;
  #leaseTimer: NodeJS.Timeout | null = null;
  #evaluationTimer: NodeJS.Timeout | null = null;
  #stopTrigger: (() => void) | null = null;
  readonly #evaluationTrigger: ((evaluate: () => void) => () => void) | null;
  #lastEvaluationAt = Number.NEGATIVE_INFINITY;
  #evaluating: Promise<void> | null = null;
  #renewing: Promise<void> | null = null;
  #closed = false;

  constructor(options: {
    config: BastionConfig;
    db: Kysely<DatabaseSchema>;
    clock: Clock;
    logger: Logger;
    registry: Registry;
    series: SeriesCatalog;
    notifiers: readonly Notifier[];
    /** Told of every alert change (live events). */
    onChange?: (change: AlertChange) => void;
    /** Identifies this process in the lease (default: a random id). */
    holder?: string;
    /**
     * Calls its argument whenever fresh data is in (the metric history's samples) and returns a
     * function that stops it. When given, rules are evaluated right after new data, at most every
     * `evaluationIntervalMs`, instead of on a timer of their own (which would evaluate twice).
     */
    evaluationTrigger?: (evaluate: () => void) => () => void;
  }) {
    const config = options.config.alerts;
    this.#config = config;
    this.#db = options.db;
    this.#clock = options.clock;
    this.#logger = options.logger.child({ component: 'alerting' });
    this.#series = options.series;
    this.#evaluationTrigger = options.evaluationTrigger ?? null;
    this.#notifiers = new Map(options.notifiers.map((notifier) => [notifier.name, notifier]));
    this.silences = new Silences({ db: options.db, clock: options.clock });
    this.outbox = new NotificationOutbox({
      db: options.db,
      clock: options.clock,
      notifiers: this.#notifiers,
      logger: this.#logger,
      registry: options.registry,
      policy: { ...config.delivery },
    });
    this.engine = new AlertEngine({
      db: options.db,
      clock: options.clock,
      series: options.series,
      sink: this.outbox,
      silences: this.silences,
      logger: this.#logger,
      registry: options.registry,
      settings: {
        groupWaitMs: parseDuration(config.groupWait),
        groupIntervalMs: parseDuration(config.groupInterval),
        repeatIntervalMs: parseDuration(config.repeatInterval),
        escalation: config.escalation
          ? { afterMs: parseDuration(config.escalation.after), channels: config.escalation.channels }
          : null,
        consoleUrl: config.consoleUrl,
      },
      onChange: options.onChange,
    });
    this.#lease = new Lease({
      db: options.db,
      name: LEASE_NAME,
      holder: options.holder ?? `${process.pid}-${randomUUID()}`,
      ttlMs: config.leaseTtlMs,
      clock: options.clock,
    });
    this.#fixedRules = this.#compileFixedRules();
    const escalationChannels = config.escalation?.channels ?? [];
    const unknown = escalationChannels.filter((channel) => !this.#notifiers.has(channel));
    if (unknown.length > 0)
      throw new TypeError(`alerts.escalation names unknown channels: ${unknown.join(', ')}`);
  }

  /** Loads the API's rules and starts competing for the lease (evaluation and delivery). */
  async start(): Promise<void> {
    if (!this.#config.enabled) return;
    await this.#loadApiRules();
    await this.#renew();
    this.#leaseTimer = setInterval(
      () => void this.#renew(),
      Math.max(200, Math.floor(this.#config.leaseTtlMs / 3)),
    );
    this.#leaseTimer.unref();
  }

  /**
   * Stops evaluating and delivering, and gives the lease up so another instance takes over at
   * once (`releaseLease: false` leaves it to expire, as a crash would; tests use it). Idempotent.
   */
  async close(options: { releaseLease?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#leaseTimer) clearInterval(this.#leaseTimer);
    await this.#renewing;
    await this.#demote();
    if (this.#config.enabled && options.releaseLease !== false) await this.#lease.release().catch(() => {});
  }

  /** Whether this instance evaluates rules and delivers notifications now. */
  get leader(): boolean {
    return this.#leader;
  }

  /** Every rule, with where it comes from. */
  rules(): ListedRule[] {
    return this.#allRules().map((rule) => ({ ...rule.definition, source: rule.source }));
  }

  /** Adds a rule (API); throws a TypeError on a bad rule or a name in use. */
  async createRule(input: unknown, createdBy: string | null): Promise<ListedRule> {
    const rule = compileRule(input, 'api', this.#context());
    if (this.#allRules().some((existing) => existing.name === rule.name)) {
      throw new TypeError(`An alert rule named "${rule.name}" already exists`);
    }
    const now = new Date(this.#clock.now()).toISOString();
    await this.#db
      .insertInto('alert_rules')
      .values({
        id: newId(this.#clock.now()),
        name: rule.name,
        definition: JSON.stringify(rule.definition),
        created_by: createdBy,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await this.#loadApiRules();
    return { ...rule.definition, source: 'api' };
  }

  /** Replaces an API rule; null when there is none of that name (other rules live in files). */
  async updateRule(name: string, input: unknown): Promise<ListedRule | null> {
    if (!this.#apiRules.some((rule) => rule.name === name)) return null;
    const rule = compileRule(input, 'api', this.#context());
    if (rule.name !== name && this.#allRules().some((existing) => existing.name === rule.name)) {
      throw new TypeError(`An alert rule named "${rule.name}" already exists`);
    }
    await this.#db
      .updateTable('alert_rules')
      .set({
        name: rule.name,
        definition: JSON.stringify(rule.definition),
        updated_at: new Date(this.#clock.now()).toISOString(),
      })
      .where('name', '=', name)
      .execute();
    await this.#loadApiRules();
    return { ...rule.definition, source: 'api' };
  }

  /** Deletes an API rule; false when there is none of that name. */
  async deleteRule(name: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('alert_rules').where('name', '=', name).executeTakeFirst();
    await this.#loadApiRules();
    return Number(result.numDeletedRows) > 0;
  }

  /** The configured channels, described without secrets. */
  channels(): Array<{ name: string; kind: string } & Record<string, unknown>> {
    return [...this.#notifiers.values()].map((notifier) => ({
      ...notifier.describe(),
      name: notifier.name,
      kind: notifier.kind,
    }));
  }

  hasChannel(name: string): boolean {
    return this.#notifiers.has(name);
  }

  /** Sends a test notification through a channel now (not through the outbox) and reports the outcome. */
  async testChannel(
    name: string,
    notification: Notification,
  ): Promise<{ delivered: boolean; error: string | null }> {
    const notifier = this.#notifiers.get(name);
    if (!notifier) throw new TypeError(`No alert channel named "${name}"`);
    try {
      await notifier.send(notification);
      return { delivered: true, error: null };
    } catch (error) {
      return { delivered: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** Alerts pending or firing, as the evaluating instance last stored them. */
  async activeAlerts(): Promise<AlertSnapshot[]> {
    if (this.#leader) return this.engine.active();
    const rows = await this.#db
      .selectFrom('alerts')
      .selectAll()
      .where('status', 'in', ['pending', 'firing'])
      .execute();
    return rows.map((row) => ({
      fingerprint: row.fingerprint,
      rule: row.rule_name,
      status: 'firing',
      severity: row.severity as AlertSnapshot['severity'],
      labels: JSON.parse(row.labels) as Record<string, string>,
      annotations: JSON.parse(row.annotations) as Record<string, string>,
      value: row.value,
      startsAt: row.started_at ?? row.pending_since ?? row.updated_at,
      endsAt: null,
      acknowledged: row.acknowledged_at !== null,
    }));
  }

  /**
   * Acknowledges a firing alert (stops its escalation and repeats); false when there is no
   * such firing, unacknowledged alert. On an instance that does not evaluate, it is written to
   * the database, where the evaluating instance picks it up at its next cycle.
   */
  async acknowledge(fingerprint: string, by: string): Promise<boolean> {
    if (this.#leader) return this.engine.acknowledge(fingerprint, by);
    const result = await this.#db
      .updateTable('alerts')
      .set({ acknowledged_at: new Date(this.#clock.now()).toISOString(), acknowledged_by: by })
      .where('fingerprint', '=', fingerprint)
      .where('status', '=', 'firing')
      .where('acknowledged_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** The alert history, newest first. */
  async history(options: { limit: number; before?: string; rule?: string }): Promise<AlertHistoryEntry[]> {
    let query = this.#db.selectFrom('alert_history').selectAll().orderBy('id', 'desc').limit(options.limit);
    if (options.before) query = query.where('id', '<', options.before);
    if (options.rule) query = query.where('rule_name', '=', options.rule);
    return (await query.execute()).map((row) => ({
      id: row.id,
      fingerprint: row.fingerprint,
      rule: row.rule_name,
      event: row.event,
      severity: row.severity,
      value: row.value,
      details: JSON.parse(row.details) as Record<string, unknown>,
      at: row.at,
    }));
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#closed) return;
    this.#renewing = (async () => {
      try {
        const held = await this.#lease.acquire();
        if (held && !this.#leader) await this.#promote();
        else if (!held && this.#leader) await this.#demote();
        if (held) await this.#loadApiRules();
      } catch (error) {
        this.#logger.error({ err: error }, 'alerting lease renewal failed');
        // Without a renewed lease another instance may take over: stop rather than double up.
        if (this.#leader) await this.#demote();
      }
    })().finally(() => {
      this.#renewing = null;
    });
    await this.#renewing;
  }

  async #promote(): Promise<void> {
    this.#leader = true;
    this.#logger.info(
      { event: 'alerting_lease_acquired', holder: this.#lease.holder },
      'this instance now evaluates alert rules',
    );
    this.engine.setRules(this.#allRules());
    await this.engine.load();
    this.outbox.start();
    if (this.#evaluationTrigger) {
      // 10 % slack: a sample a little early must not skip a whole interval.
      const spacing = this.#config.evaluationIntervalMs * 0.9;
      this.#stopTrigger = this.#evaluationTrigger(() => {
        if (this.#clock.now() - this.#lastEvaluationAt >= spacing) void this.evaluateNow();
      });
    } else {
      this.#evaluationTimer = setInterval(() => void this.evaluateNow(), this.#config.evaluationIntervalMs);
      this.#evaluationTimer.unref();
    }
    await this.evaluateNow();
  }

  async #demote(): Promise<void> {
    if (!this.#leader) return;
    this.#leader = false;
    if (this.#evaluationTimer) clearInterval(this.#evaluationTimer);
    this.#evaluationTimer = null;
    this.#stopTrigger?.();
    this.#stopTrigger = null;
    await this.#evaluating;
    await this.outbox.stop();
    this.#logger.warn(
      { event: 'alerting_lease_lost', holder: this.#lease.holder },
      'this instance stopped evaluating alert rules',
    );
  }

  /** Runs one evaluation cycle now (the timer's work; tests call it too). Never overlaps itself. */
  async evaluateNow(): Promise<void> {
    if (!this.#leader || this.#evaluating) return;
    this.#lastEvaluationAt = this.#clock.now();
    this.#evaluating = this.engine
      .evaluate()
      .catch((error: unknown) => this.#logger.error({ err: error }, 'alert evaluation failed'))
      .finally(() => {
        this.#evaluating = null;
      });
    await this.#evaluating;
  }

  async #loadApiRules(): Promise<void> {
    const rows = await this.#db
      .selectFrom('alert_rules')
      .select(['name', 'definition'])
      .orderBy('created_at')
      .execute();
    const rules: AlertRule[] = [];
    for (const row of rows) {
      try {
        rules.push(compileRule(JSON.parse(row.definition), 'api', this.#context()));
      } catch (error) {
        this.#logger.error({ err: error, rule: row.name }, 'stored alert rule is no longer valid; skipped');
      }
    }
    this.#apiRules = rules;
    if (this.#leader) this.engine.setRules(this.#allRules());
  }

  #allRules(): AlertRule[] {
    return [...this.#fixedRules, ...this.#apiRules];
  }

  #context(): RuleContext {
    return {
      series: new Set(this.#series.list().map((series) => series.name)),
      channels: new Set(this.#notifiers.keys()),
    };
  }

  // Defaults, SLO burn rates and the config file's rules, checked at start-up (a bad rule stops it).
  #compileFixedRules(): AlertRule[] {
    const config = this.#config;
    const channels = config.defaultChannels.length > 0 ? config.defaultChannels : [...this.#notifiers.keys()];
    const context = this.#context();
    const rules: AlertRule[] = [];
    const problems: string[] = [];
    const add = (input: unknown, source: AlertRule['source']) => {
      try {
        const rule = compileRule(input, source, context);
        if (rules.some((existing) => existing.name === rule.name))
          problems.push(`alert rule "${rule.name}" is defined twice`);
        else rules.push(rule);
      } catch (error) {
        problems.push((error as Error).message);
      }
    };
    for (const { input, source } of configuredRuleInputs(config, channels)) add(input, source);
    if (problems.length > 0) throw new TypeError(`Alert rules refused:\n- ${problems.join('\n- ')}`);
    return rules;
  }
}
