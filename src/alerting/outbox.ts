import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import { DeliveryError, type Notification, type Notifier } from './types.ts';

/** Retry policy of the outbox. */
export interface DeliveryPolicy {
  /** Attempts before a notification is dead-lettered. */
  maxAttempts: number;
  /** First retry delay; doubles per attempt, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Consecutive failures that open a channel's circuit breaker. */
  breakerThreshold: number;
  /** How long an open breaker waits before letting one delivery try (half-open). */
  breakerHalfOpenMs: number;
  /** A claimed notification whose delivery did not finish (crash) is tried again after this. */
  claimTimeoutMs: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = {
  maxAttempts: 10,
  baseDelayMs: 1000,
  maxDelayMs: 300_000,
  breakerThreshold: 5,
  breakerHalfOpenMs: 30_000,
  claimTimeoutMs: 60_000,
};

/** 'pending' (waiting or retrying), 'delivered', or 'dead' (given up; visible in the API). */
export type OutboxStatus = 'pending' | 'delivered' | 'dead';

/** One notification in the outbox, as the API lists it. */
export interface OutboxEntry {
  id: string;
  idempotencyKey: string;
  channel: string;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  notification: Notification;
}

const BATCH = 50;
// Longest sleep of the worker: rows claimed by an instance that died come back when their claim
// times out, and a pass that failed (database unreachable) is tried again after this.
const POLL_MS = 1000;

/**
 * A channel's cockatiel breaker, and when (by the outbox's clock) it last opened. Cockatiel times
 * the half-open wait with `Date.now()`; the outbox gates it with its own clock instead, so that
 * the breaker and the rows it reschedules agree on time (and tests can drive both).
 */
interface ChannelBreaker {
  readonly policy: CircuitBreakerPolicy;
  openedAt: number;
}

/**
 * Durable delivery: a notification is written to the `notification_outbox` table first and
 * delivered from there, so nothing is lost when a receiver is down or the server restarts.
 * Failed deliveries are retried with exponential backoff and jitter (honouring Retry-After);
 * each channel has a circuit breaker (cockatiel) so a dead receiver is not hammered; after
 * `maxAttempts`, or on a permanent error (4xx), the notification is dead-lettered. Each
 * notification carries an idempotency key: delivery is at least once, and receivers can drop
 * repeats. A row is claimed with a conditional update before it is sent, so two instances
 * (e.g. during a lease hand-over) never send it at the same time.
 */
export class NotificationOutbox {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  readonly #notifiers: ReadonlyMap<string, Notifier>;
  readonly #logger: Logger;
  readonly #policy: DeliveryPolicy;
  readonly #random: () => number;
  readonly #breakers = new Map<string, ChannelBreaker>();
  readonly #outcomes: Counter<'channel' | 'outcome'>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #active = false;

  constructor(options: {
    db: Kysely<DatabaseSchema>;
    clock: Clock;
    notifiers: ReadonlyMap<string, Notifier>;
    logger: Logger;
    registry: Registry;
    policy?: Partial<DeliveryPolicy>;
    random?: () => number;
  }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#notifiers = options.notifiers;
    this.#logger = options.logger;
    this.#policy = { ...DEFAULT_DELIVERY_POLICY, ...options.policy };
    this.#random = options.random ?? Math.random;
    this.#outcomes = new Counter({
      name: 'bastion_alert_notifications_total',
      help: 'Alert notification delivery attempts by channel and outcome (delivered, retry, dead).',
      labelNames: ['channel', 'outcome'],
      registers: [options.registry],
    });
    const breakers = this.#breakers;
    new Gauge({
      name: 'bastion_alert_channel_breaker_state',
      help: "Alert channels' circuit breakers: 0 closed, 1 open, 2 half-open, 3 isolated.",
      labelNames: ['channel'],
      registers: [options.registry],
      collect() {
        for (const [channel, breaker] of breakers) this.set({ channel }, breaker.policy.state);
      },
    });
  }

  /**
   * Adds a notification for `channel` (once per idempotency key: adding it again does nothing)
   * and wakes the worker. Throws when the channel does not exist.
   */
  async enqueue(channel: string, notification: Notification): Promise<void> {
    if (!this.#notifiers.has(channel)) throw new TypeError(`No alert channel named "${channel}"`);
    const now = new Date(this.#clock.now()).toISOString();
    await this.#db
      .insertInto('notification_outbox')
      .values({
        id: newId(this.#clock.now()),
        idempotency_key: `${notification.idempotencyKey}:${channel}`,
        channel,
        payload: JSON.stringify(notification),
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        last_error: null,
        created_at: now,
        updated_at: now,
        delivered_at: null,
      })
      .onConflict((conflict) => conflict.column('idempotency_key').doNothing())
      .execute();
    this.wake();
  }

  /** Starts delivering (this instance holds the alerting lease): due rows now, then as they come due. */
  start(): void {
    this.#active = true;
    this.wake();
  }

  /** Stops delivering; resolves once a pass in progress has finished. */
  async stop(): Promise<void> {
    this.#active = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** Runs a delivery pass soon (after an enqueue, or when a retry comes due). */
  wake(): void {
    if (!this.#active) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#pass().finally(() => {
      this.#running = null;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  /** Delivers every due notification once (claiming each first); returns how many were tried. */
  async deliverDue(): Promise<number> {
    const now = this.#clock.now();
    const due = await this.#db
      .selectFrom('notification_outbox')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', new Date(now).toISOString())
      .orderBy('next_attempt_at')
      .limit(BATCH)
      .execute();
    let tried = 0;
    for (const row of due) {
      if (!(await this.#claim(row.id, row.next_attempt_at, now))) continue;
      tried += 1;
      await this.#deliver(row.id, row.channel, row.attempts, JSON.parse(row.payload) as Notification);
    }
    return tried;
  }

  /** Notifications by status, newest first (the API's outbox and dead-letter views). */
  async list(options: { status?: OutboxStatus; limit: number; before?: string }): Promise<OutboxEntry[]> {
    let query = this.#db
      .selectFrom('notification_outbox')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(options.limit);
    if (options.status) query = query.where('status', '=', options.status);
    if (options.before) query = query.where('id', '<', options.before);
    const rows = await query.execute();
    return rows.map((row) => ({
      id: row.id,
      idempotencyKey: row.idempotency_key,
      channel: row.channel,
      status: row.status as OutboxStatus,
      attempts: row.attempts,
      nextAttemptAt: row.next_attempt_at,
      lastError: row.last_error,
      createdAt: row.created_at,
      deliveredAt: row.delivered_at,
      notification: JSON.parse(row.payload) as Notification,
    }));
  }

  /** Puts a dead-lettered notification back in line (attempts start over); false when there is none. */
  async retry(id: string): Promise<boolean> {
    const now = new Date(this.#clock.now()).toISOString();
    const result = await this.#db
      .updateTable('notification_outbox')
      .set({ status: 'pending', attempts: 0, next_attempt_at: now, updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'dead')
      .executeTakeFirst();
    this.wake();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Counts by status (for `/health/detailed` and the dashboard). */
  async counts(): Promise<Record<OutboxStatus, number>> {
    const rows = await this.#db
      .selectFrom('notification_outbox')
      .select(['status', (eb) => eb.fn.countAll<number | string>().as('count')])
      .groupBy('status')
      .execute();
    const counts: Record<OutboxStatus, number> = { pending: 0, delivered: 0, dead: 0 };
    for (const row of rows) counts[row.status as OutboxStatus] = Number(row.count);
    return counts;
  }

  /** The state of each channel's circuit breaker. */
  breakerStates(): Record<string, 'closed' | 'open' | 'half-open' | 'isolated'> {
    const names = {
      [CircuitState.Closed]: 'closed',
      [CircuitState.Open]: 'open',
      [CircuitState.HalfOpen]: 'half-open',
      [CircuitState.Isolated]: 'isolated',
    } as const;
    return Object.fromEntries(
      [...this.#breakers].map(([channel, breaker]) => [channel, names[breaker.policy.state]]),
    );
  }

  // Moves the row's next attempt past the claim timeout, only if nobody else did first.
  async #claim(id: string, seenNextAttempt: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('notification_outbox')
      .set({ next_attempt_at: new Date(now + this.#policy.claimTimeoutMs).toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', seenNextAttempt)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async #deliver(id: string, channel: string, attempts: number, notification: Notification): Promise<void> {
    const notifier = this.#notifiers.get(channel);
    const now = this.#clock.now();
    if (!notifier) {
      await this.#finish(id, {
        status: 'dead',
        attempts,
        error: `channel "${channel}" is no longer configured`,
      });
      this.#outcomes.inc({ channel, outcome: 'dead' });
      return;
    }
    const breaker = this.#breaker(channel);
    try {
      if (breaker.policy.state === CircuitState.Open && now < this.#halfOpensAt(breaker)) {
        throw new BrokenCircuitError();
      }
      await breaker.policy.execute(() => notifier.send(notification));
      await this.#finish(id, { status: 'delivered', attempts: attempts + 1, deliveredAt: now });
      this.#outcomes.inc({ channel, outcome: 'delivered' });
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        const reopensAt = this.#halfOpensAt(breaker);
        // Not an attempt: the receiver was not called. Try again when the breaker half-opens.
        await this.#finish(id, {
          status: 'pending',
          attempts,
          error: `circuit open: ${channel} failed repeatedly`,
          // Cockatiel only refuses on its own when the wall clock went back; then wait a full period.
          nextAttemptAt: reopensAt > now ? reopensAt : now + this.#policy.breakerHalfOpenMs,
        });
        return;
      }
      const delivery = error instanceof DeliveryError ? error : null;
      const made = attempts + 1;
      const message = error instanceof Error ? error.message : String(error);
      if ((delivery !== null && !delivery.retryable) || made >= this.#policy.maxAttempts) {
        await this.#finish(id, { status: 'dead', attempts: made, error: message });
        this.#outcomes.inc({ channel, outcome: 'dead' });
        this.#logger.error(
          { event: 'alert_notification_dead', channel, notification_id: id, attempts: made, error: message },
          'alert notification given up (dead letter)',
        );
        return;
      }
      const delay = this.#backoff(made, delivery?.retryAfterSeconds ?? null);
      await this.#finish(id, {
        status: 'pending',
        attempts: made,
        error: message,
        nextAttemptAt: now + delay,
      });
      this.#outcomes.inc({ channel, outcome: 'retry' });
      this.#logger.warn(
        {
          event: 'alert_notification_retry',
          channel,
          notification_id: id,
          attempts: made,
          retry_in_ms: delay,
          error: message,
        },
        'alert notification failed; will retry',
      );
    }
  }

  async #finish(
    id: string,
    outcome: {
      status: OutboxStatus;
      attempts: number;
      error?: string;
      nextAttemptAt?: number;
      deliveredAt?: number;
    },
  ): Promise<void> {
    const now = new Date(this.#clock.now()).toISOString();
    await this.#db
      .updateTable('notification_outbox')
      .set({
        status: outcome.status,
        attempts: outcome.attempts,
        last_error: outcome.error?.slice(0, 1000) ?? null,
        updated_at: now,
        ...(outcome.nextAttemptAt !== undefined
          ? { next_attempt_at: new Date(outcome.nextAttemptAt).toISOString() }
          : {}),
        ...(outcome.deliveredAt !== undefined
          ? { delivered_at: new Date(outcome.deliveredAt).toISOString() }
          : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Exponential backoff with "equal jitter" (half fixed, half random), at least Retry-After. */
  #backoff(attempt: number, retryAfterSeconds: number | null): number {
    const ceiling = Math.min(this.#policy.maxDelayMs, this.#policy.baseDelayMs * 2 ** (attempt - 1));
    const jittered = ceiling / 2 + this.#random() * (ceiling / 2);
    return Math.round(Math.max(jittered, (retryAfterSeconds ?? 0) * 1000));
  }

  #halfOpensAt(breaker: ChannelBreaker): number {
    return breaker.openedAt + this.#policy.breakerHalfOpenMs;
  }

  #breaker(channel: string): ChannelBreaker {
    let breaker = this.#breakers.get(channel);
    if (!breaker) {
      // Permanent failures (a 4xx) say nothing about the receiver's health: they do not count.
      const transient = handleWhen((error) => !(error instanceof DeliveryError) || error.retryable);
      const policy = circuitBreaker(transient, {
        // The wait is enforced in #deliver with the outbox's clock; once it has passed, cockatiel
        // lets the next call through as the half-open trial.
        halfOpenAfter: 0,
        breaker: new ConsecutiveBreaker(this.#policy.breakerThreshold),
      });
      const entry: ChannelBreaker = { policy, openedAt: 0 };
      policy.onBreak(() => {
        entry.openedAt = this.#clock.now();
      });
      breaker = entry;
      policy.onStateChange((state) =>
        this.#logger.warn(
          { event: 'alert_channel_breaker', channel, state: CircuitState[state] },
          'alert channel breaker changed',
        ),
      );
      this.#breakers.set(channel, breaker);
    }
    return breaker;
  }

  // One run of the worker. It must never reject: `wake` has nobody to hand a rejection to (it
  // would be an unhandled rejection, which stops the server), and a pass that failed because the
  // database was briefly unreachable must not leave the worker asleep for good.
  async #pass(): Promise<void> {
    try {
      await this.deliverDue();
      await this.#scheduleNext();
    } catch (error) {
      this.#logger.error({ err: error }, 'alert delivery pass failed');
      this.#sleep(POLL_MS);
    }
  }

  // Sleeps until the earliest pending notification is due, at most POLL_MS.
  async #scheduleNext(): Promise<void> {
    if (!this.#active) return;
    const next = await this.#db
      .selectFrom('notification_outbox')
      .select('next_attempt_at')
      .where('status', '=', 'pending')
      .orderBy('next_attempt_at')
      .limit(1)
      .executeTakeFirst();
    const wait = next ? Math.max(0, Date.parse(next.next_attempt_at) - this.#clock.now()) : POLL_MS;
    this.#sleep(Math.min(wait, POLL_MS));
  }

  #sleep(ms: number): void {
    // stop() may have run while the pass awaited the database.
    if (!this.#active) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.wake(), ms);
    this.#timer.unref();
  }
}
