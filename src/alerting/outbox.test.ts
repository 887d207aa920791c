import { type Logger, pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type DatabaseBackend,
  postgresBackend,
  sqliteBackend,
} from '../../test/support/database-backends.ts';
import { postgresAvailable } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import type { Database } from '../storage/database.ts';
import { type DeliveryPolicy, NotificationOutbox } from './outbox.ts';
import { DeliveryError, type Notification, type Notifier } from './types.ts';

const pgUp = await postgresAvailable();

/** What the fake receiver does with one call. */
type Outcome = Error | 'hang';

/**
 * A channel's receiver that records every call and fails on command: queued outcomes first, then
 * `down` (an outage) for every call, else success. It stands for the remote end, so one instance
 * is shared by the outboxes of a "restarted" server.
 */
class FakeReceiver implements Notifier {
  readonly kind = 'webhook';
  /** Idempotency keys of every call, failed or not. */
  readonly calls: string[] = [];
  /** Idempotency keys of the calls that succeeded. */
  readonly delivered: string[] = [];
  down: Error | null = null;
  readonly #queue: Outcome[] = [];

  constructor(readonly name: string) {}

  describe(): Record<string, unknown> {
    return {};
  }

  failNext(...outcomes: Outcome[]): void {
    this.#queue.push(...outcomes);
  }

  async send(notification: Notification): Promise<void> {
    this.calls.push(notification.idempotencyKey);
    const outcome = this.#queue.shift() ?? this.down;
    if (outcome === 'hang') return new Promise<void>(() => {});
    if (outcome) throw outcome;
    this.delivered.push(notification.idempotencyKey);
  }
}

const unavailable = () => new DeliveryError('HTTP 503 from receiver', { retryable: true });

function notification(key: string): Notification {
  return {
    idempotencyKey: key,
    groupKey: `{alertname="${key}"}`,
    status: 'firing',
    severity: 'critical',
    commonLabels: { alertname: key },
    alerts: [],
    title: `[FIRING] ${key}`,
    url: null,
    createdAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
    test: false,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const sorted = (values: readonly string[]) => [...values].sort();

/** A policy that never opens a breaker by accident; tests of the breaker set their own threshold. */
const POLICY: Partial<DeliveryPolicy> = {
  maxAttempts: 10,
  baseDelayMs: 1000,
  maxDelayMs: 300_000,
  breakerThreshold: 1000,
  breakerHalfOpenMs: 30_000,
  claimTimeoutMs: 60_000,
};

async function metricValues(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return Object.fromEntries(values.map((value) => [Object.values(value.labels).join('/'), value.value]));
}

describe.each([
  { engine: 'SQLite', make: () => sqliteBackend({ poolMax: 4 }), skip: false },
  { engine: 'PostgreSQL', make: () => postgresBackend({ poolMax: 4 }), skip: !pgUp },
])('NotificationOutbox on $engine', ({ make, skip }) => {
  const test = it.skipIf(skip);
  let backend: DatabaseBackend;
  let database: Database;
  let clock: ManualClock;
  let t0: number;

  beforeEach(async () => {
    if (skip) return;
    backend = make();
    database = await backend.open();
    clock = new ManualClock();
    t0 = clock.now();
  });
  afterEach(async () => {
    if (skip) return;
    await backend.cleanup();
  });

  function outbox(
    receivers: readonly Notifier[],
    options: {
      db?: Database;
      policy?: Partial<DeliveryPolicy>;
      random?: () => number;
      registry?: Registry;
      logger?: Logger;
    } = {},
  ): NotificationOutbox {
    return new NotificationOutbox({
      db: (options.db ?? database).db,
      clock,
      notifiers: new Map(receivers.map((receiver) => [receiver.name, receiver])),
      logger: options.logger ?? pino({ level: 'silent' }),
      registry: options.registry ?? new Registry(),
      policy: { ...POLICY, ...options.policy },
      random: options.random ?? (() => 0),
    });
  }

  async function row(key: string, channel = 'webhook', db: Database = database) {
    const found = await db.db
      .selectFrom('notification_outbox')
      .selectAll()
      .where('idempotency_key', '=', `${key}:${channel}`)
      .executeTakeFirst();
    if (!found) throw new Error(`no outbox row for ${key}:${channel}`);
    return found;
  }

  // Enqueues one notification per key, a millisecond apart, so that delivery order is the key order.
  async function enqueueAll(target: NotificationOutbox, keys: readonly string[], channel = 'webhook') {
    for (const key of keys) {
      await target.enqueue(channel, notification(key));
      clock.advance(1);
    }
  }

  test('stores a notification once per idempotency key and channel, and delivers it once', async () => {
    const webhook = new FakeReceiver('webhook');
    const email = new FakeReceiver('email');
    const box = outbox([webhook, email]);
    await box.enqueue('webhook', notification('k1'));
    await box.enqueue('webhook', notification('k1'));
    await box.enqueue('email', notification('k1'));
    await expect(box.enqueue('pager', notification('k1'))).rejects.toThrow(TypeError);

    const listed = await box.list({ limit: 10 });
    expect(listed.map((entry) => [entry.idempotencyKey, entry.channel, entry.status]).sort()).toEqual([
      ['k1:email', 'email', 'pending'],
      ['k1:webhook', 'webhook', 'pending'],
    ]);

    expect(await box.deliverDue()).toBe(2);
    expect(webhook.calls).toEqual(['k1']);
    expect(email.calls).toEqual(['k1']);
    // Delivered already: enqueueing it again (an engine re-sending after a restart) adds nothing.
    await box.enqueue('webhook', notification('k1'));
    clock.advance(3_600_000);
    expect(await box.deliverDue()).toBe(0);
    expect(webhook.calls).toEqual(['k1']);
    expect(await box.counts()).toEqual({ pending: 0, delivered: 2, dead: 0 });
    expect(await row('k1')).toMatchObject({
      status: 'delivered',
      attempts: 1,
      last_error: null,
      delivered_at: iso(t0),
    });
  });

  test('retries a retryable failure with doubling, jittered delays; counts attempts and keeps the error', async () => {
    const webhook = new FakeReceiver('webhook');
    webhook.failNext(
      unavailable(),
      new DeliveryError('connection refused', { retryable: true }),
      new Error('socket hang up'),
    );
    const jitter = [0, 0.5, 0.999];
    const registry = new Registry();
    const box = outbox([webhook], { random: () => jitter.shift() ?? 0, registry });
    await box.enqueue('webhook', notification('k'));

    // Attempt n waits base·2^(n−1)/2 plus random·base·2^(n−1)/2: 500 (random 0), then
    // 1000 + 0.5·1000 = 1500, then 2000 + 0.999·2000 = 3998.
    const expected = [
      { delay: 500, error: 'HTTP 503 from receiver' },
      { delay: 1500, error: 'connection refused' },
      { delay: 3998, error: 'socket hang up' },
    ];
    for (const [index, step] of expected.entries()) {
      expect(await box.deliverDue()).toBe(1);
      expect(await row('k')).toMatchObject({
        status: 'pending',
        attempts: index + 1,
        last_error: step.error,
        next_attempt_at: iso(clock.now() + step.delay),
      });
      clock.advance(step.delay - 1);
      expect(await box.deliverDue()).toBe(0);
      clock.advance(1);
    }
    expect(await box.deliverDue()).toBe(1);
    expect(webhook.calls).toEqual(['k', 'k', 'k', 'k']);
    expect(webhook.delivered).toEqual(['k']);
    expect(await row('k')).toMatchObject({ status: 'delivered', attempts: 4, last_error: null });
    expect(await metricValues(registry, 'bastion_alert_notifications_total')).toEqual({
      'webhook/retry': 3,
      'webhook/delivered': 1,
    });
  });

  test('keeps every delay within [base·2^(n−1)/2, base·2^(n−1)] (capped by maxDelayMs) with Math.random, and dead-letters after maxAttempts', async () => {
    const webhook = new FakeReceiver('webhook');
    webhook.down = unavailable();
    const policy = { baseDelayMs: 1000, maxDelayMs: 20_000, maxAttempts: 8 };
    const box = outbox([webhook], { policy, random: Math.random });
    await box.enqueue('webhook', notification('k'));
    const delays: number[] = [];
    for (let attempt = 1; attempt < policy.maxAttempts; attempt += 1) {
      expect(await box.deliverDue()).toBe(1);
      const current = await row('k');
      expect(current).toMatchObject({ status: 'pending', attempts: attempt });
      const delay = Date.parse(current.next_attempt_at) - clock.now();
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
      delays.push(delay);
      clock.advance(delay - 1);
      expect(await box.deliverDue()).toBe(0);
      clock.advance(1);
    }
    // Attempts 6 and 7 (32 s and 64 s uncapped) were held to maxDelayMs.
    expect(delays).toHaveLength(7);
    expect(await box.deliverDue()).toBe(1);
    expect(await row('k')).toMatchObject({
      status: 'dead',
      attempts: 8,
      last_error: 'HTTP 503 from receiver',
    });
    clock.advance(3_600_000);
    expect(await box.deliverDue()).toBe(0);
    expect(webhook.calls).toHaveLength(8);
    expect(webhook.delivered).toEqual([]);
  });

  test('honours Retry-After when it asks for longer than the backoff', async () => {
    const webhook = new FakeReceiver('webhook');
    webhook.failNext(new DeliveryError('HTTP 429', { retryable: true, retryAfterSeconds: 120 }));
    const box = outbox([webhook], { random: () => 0.999 });
    await box.enqueue('webhook', notification('k'));
    expect(await box.deliverDue()).toBe(1);
    expect(await row('k')).toMatchObject({
      attempts: 1,
      last_error: 'HTTP 429',
      next_attempt_at: iso(t0 + 120_000),
    });
    clock.advance(119_999);
    expect(await box.deliverDue()).toBe(0);
    clock.advance(1);
    expect(await box.deliverDue()).toBe(1);
    expect(webhook.calls).toEqual(['k', 'k']);
    expect(webhook.delivered).toEqual(['k']);
  });

  test('dead-letters a permanent failure at once, lists it, and retry(id) puts it back to be delivered', async () => {
    const webhook = new FakeReceiver('webhook');
    webhook.failNext(new DeliveryError('HTTP 400 bad payload', { retryable: false }));
    const registry = new Registry();
    const box = outbox([webhook], { registry });
    await box.enqueue('webhook', notification('k'));
    expect(await box.deliverDue()).toBe(1);

    const dead = await box.list({ status: 'dead', limit: 10 });
    expect(dead).toHaveLength(1);
    const [entry] = dead;
    expect(entry).toMatchObject({
      idempotencyKey: 'k:webhook',
      channel: 'webhook',
      status: 'dead',
      attempts: 1,
      lastError: 'HTTP 400 bad payload',
      deliveredAt: null,
      notification: { idempotencyKey: 'k', title: '[FIRING] k' },
    });
    expect(await box.list({ status: 'pending', limit: 10 })).toEqual([]);
    expect(await box.counts()).toEqual({ pending: 0, delivered: 0, dead: 1 });
    clock.advance(3_600_000);
    expect(await box.deliverDue()).toBe(0);
    expect(webhook.calls).toEqual(['k']);

    const id = entry!.id;
    expect(await box.retry('0'.repeat(28))).toBe(false);
    expect(await box.retry(id)).toBe(true);
    expect(await row('k')).toMatchObject({
      status: 'pending',
      attempts: 0,
      next_attempt_at: iso(clock.now()),
    });
    // Only a dead row can be retried: a pending one is left alone.
    expect(await box.retry(id)).toBe(false);
    expect(await box.deliverDue()).toBe(1);
    expect(await row('k')).toMatchObject({
      status: 'delivered',
      attempts: 1,
      delivered_at: iso(clock.now()),
    });
    expect(webhook.calls).toEqual(['k', 'k']);
    expect(webhook.delivered).toEqual(['k']);
    expect(await box.retry(id)).toBe(false);
    expect(await metricValues(registry, 'bastion_alert_notifications_total')).toEqual({
      'webhook/dead': 1,
      'webhook/delivered': 1,
    });
  });

  test('dead-letters after maxAttempts retryable failures; retry(id) starts the attempts over', async () => {
    const webhook = new FakeReceiver('webhook');
    webhook.down = unavailable();
    const box = outbox([webhook], { policy: { maxAttempts: 3 } });
    await box.enqueue('webhook', notification('k'));
    expect(await box.deliverDue()).toBe(1);
    clock.advance(500);
    expect(await box.deliverDue()).toBe(1);
    clock.advance(1000);
    expect(await box.deliverDue()).toBe(1);
    const dead = await row('k');
    expect(dead).toMatchObject({ status: 'dead', attempts: 3, last_error: 'HTTP 503 from receiver' });
    expect(webhook.calls).toEqual(['k', 'k', 'k']);

    webhook.down = null;
    expect(await box.retry(dead.id)).toBe(true);
    expect(await box.deliverDue()).toBe(1);
    expect(await row('k')).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(webhook.delivered).toEqual(['k']);
  });

  test('opens a channel breaker after breakerThreshold consecutive failures: that channel fails fast, others deliver; after breakerHalfOpenMs one trial goes through', async () => {
    const failing = new FakeReceiver('failing');
    const healthy = new FakeReceiver('healthy');
    failing.down = unavailable();
    const registry = new Registry();
    const box = outbox([failing, healthy], {
      registry,
      policy: { breakerThreshold: 3, breakerHalfOpenMs: 30_000 },
    });
    const state = () => metricValues(registry, 'bastion_alert_channel_breaker_state');

    await enqueueAll(box, ['a1', 'a2', 'a3'], 'failing');
    expect(await box.deliverDue()).toBe(3);
    expect(failing.calls).toEqual(['a1', 'a2', 'a3']);
    expect(box.breakerStates()).toEqual({ failing: 'open' });
    expect(await state()).toEqual({ failing: 1 });
    const openedAt = clock.now();

    await box.enqueue('failing', notification('a4'));
    await box.enqueue('healthy', notification('b1'));
    expect(await box.deliverDue()).toBe(2);
    // a4 failed fast: not an attempt, the receiver was not called; it waits for the half-open.
    expect(failing.calls).toEqual(['a1', 'a2', 'a3']);
    expect(healthy.delivered).toEqual(['b1']);
    expect(await row('a4', 'failing')).toMatchObject({
      status: 'pending',
      attempts: 0,
      last_error: 'circuit open: failing failed repeatedly',
      next_attempt_at: iso(openedAt + 30_000),
    });
    expect(box.breakerStates()).toEqual({ failing: 'open', healthy: 'closed' });
    expect(await state()).toEqual({ failing: 1, healthy: 0 });

    // a1..a3 come due for their retry (500 ms) while the breaker is open: they fail fast too.
    clock.advance(500);
    expect(await box.deliverDue()).toBe(3);
    expect(failing.calls).toHaveLength(3);
    for (const key of ['a1', 'a2', 'a3']) {
      expect(await row(key, 'failing')).toMatchObject({
        attempts: 1,
        next_attempt_at: iso(openedAt + 30_000),
      });
    }
    clock.advance(openedAt + 30_000 - 1 - clock.now());
    expect(await box.deliverDue()).toBe(0);
    expect(failing.calls).toHaveLength(3);

    // Half-open, receiver still down: exactly one trial reaches it, fails, and re-opens the breaker.
    clock.advance(1);
    expect(await box.deliverDue()).toBe(4);
    expect(failing.calls).toHaveLength(4);
    expect(box.breakerStates().failing).toBe('open');
    const attempts = await Promise.all(
      ['a1', 'a2', 'a3', 'a4'].map(async (key) => (await row(key, 'failing')).attempts),
    );
    expect(attempts.reduce((sum, value) => sum + value, 0)).toBe(1 + 1 + 1 + 0 + 1);
    const reopenedAt = clock.now();

    // Half-open again, receiver back: the trial succeeds, closes the breaker, and the rest follow.
    failing.down = null;
    clock.advance(reopenedAt + 30_000 - 1 - clock.now());
    expect(await box.deliverDue()).toBe(1); // the trial row's own retry (1 s) failing fast
    expect(failing.calls).toHaveLength(4);
    clock.advance(1);
    expect(await box.deliverDue()).toBe(4);
    expect(sorted(failing.delivered)).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(failing.calls).toHaveLength(8);
    expect(box.breakerStates()).toEqual({ failing: 'closed', healthy: 'closed' });
    expect(await state()).toEqual({ failing: 0, healthy: 0 });
    expect(await box.counts()).toEqual({ pending: 0, delivered: 5, dead: 0 });
  });

  test('permanent failures (4xx) do not open the breaker', async () => {
    const webhook = new FakeReceiver('webhook');
    const rejected = () => new DeliveryError('HTTP 422', { retryable: false });
    webhook.failNext(rejected(), rejected(), rejected());
    const box = outbox([webhook], { policy: { breakerThreshold: 2 } });
    await enqueueAll(box, ['k1', 'k2', 'k3', 'k4']);
    expect(await box.deliverDue()).toBe(4);
    expect(webhook.calls).toEqual(['k1', 'k2', 'k3', 'k4']);
    expect(webhook.delivered).toEqual(['k4']);
    expect(box.breakerStates()).toEqual({ webhook: 'closed' });
    expect(await box.counts()).toEqual({ pending: 0, delivered: 1, dead: 3 });
  });

  test('a restarted server delivers, exactly once, a row whose deliverer crashed mid-send, after claimTimeoutMs', async () => {
    const receiver = new FakeReceiver('webhook');
    receiver.failNext('hang');
    const crashed = outbox([receiver]);
    await crashed.enqueue('webhook', notification('k'));
    void crashed.deliverDue();
    await vi.waitFor(() => expect(receiver.calls).toEqual(['k']));
    expect(await row('k')).toMatchObject({
      status: 'pending',
      attempts: 0,
      next_attempt_at: iso(t0 + 60_000),
    });
    // The process is gone: its outbox object is dropped and its connection closed.
    await backend.close(database);

    const restartedDb = await backend.open();
    const restarted = outbox([receiver], { db: restartedDb });
    expect(await restarted.deliverDue()).toBe(0);
    clock.advance(59_999);
    expect(await restarted.deliverDue()).toBe(0);
    expect(receiver.calls).toEqual(['k']);
    clock.advance(1);
    expect(await restarted.deliverDue()).toBe(1);
    expect(receiver.delivered).toEqual(['k']);
    clock.advance(3_600_000);
    expect(await restarted.deliverDue()).toBe(0);
    expect(receiver.calls).toEqual(['k', 'k']);
    expect(await row('k', 'webhook', restartedDb)).toMatchObject({ status: 'delivered', attempts: 1 });
  });

  test('receiver outage with a restart mid-retry: every notification is delivered exactly once afterwards', async () => {
    const receiver = new FakeReceiver('webhook');
    receiver.down = unavailable();
    const keys = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const policy = { breakerThreshold: 3, breakerHalfOpenMs: 30_000 };
    const first = outbox([receiver], { policy });
    await enqueueAll(first, keys);
    first.start();
    await vi.waitFor(async () => {
      expect(await first.counts()).toEqual({ pending: 5, delivered: 0, dead: 0 });
      const failed = await database.db
        .selectFrom('notification_outbox')
        .select('id')
        .where('last_error', 'is not', null)
        .execute();
      expect(failed).toHaveLength(5);
    });
    await first.stop();
    await backend.close(database);
    // Three attempts reached the receiver and opened the breaker; the last two failed fast.
    expect(receiver.calls).toEqual(['n1', 'n2', 'n3']);
    const stoppedAt = clock.now();

    receiver.down = null;
    const restartedDb = await backend.open();
    const states = await Promise.all(keys.map((key) => row(key, 'webhook', restartedDb)));
    expect(states.map((state) => [state.status, state.attempts, state.last_error])).toEqual([
      ['pending', 1, 'HTTP 503 from receiver'],
      ['pending', 1, 'HTTP 503 from receiver'],
      ['pending', 1, 'HTTP 503 from receiver'],
      ['pending', 0, 'circuit open: webhook failed repeatedly'],
      ['pending', 0, 'circuit open: webhook failed repeatedly'],
    ]);
    const second = outbox([receiver], { db: restartedDb, policy });
    // The retry schedule survived the restart: nothing is due yet.
    expect(await second.deliverDue()).toBe(0);
    clock.advance(stoppedAt + 30_000 - clock.now());
    second.start();
    await vi.waitFor(() => expect(receiver.delivered).toHaveLength(5));
    await second.stop();
    expect(sorted(receiver.delivered)).toEqual(keys);
    expect(receiver.calls).toHaveLength(8);
    expect(await second.counts()).toEqual({ pending: 0, delivered: 5, dead: 0 });
    expect(await second.deliverDue()).toBe(0);
    expect(receiver.calls).toHaveLength(8);
  });

  test('two outboxes delivering from one table at the same time never send a row twice', async () => {
    // Each instance's first send waits until the other has sent too, so both are mid-pass together.
    const delivered: string[] = [];
    const started = [deferred(), deferred()] as const;
    const instance = (own: 0 | 1): Notifier => ({
      name: 'webhook',
      kind: 'webhook',
      describe: () => ({}),
      async send(sent) {
        started[own].resolve();
        await started[own === 0 ? 1 : 0].promise;
        delivered.push(sent.idempotencyKey);
      },
    });
    const keys = Array.from({ length: 20 }, (_, index) => `k${String(index).padStart(2, '0')}`);
    const a = outbox([instance(0)]);
    await enqueueAll(a, keys);
    const b = outbox([instance(1)], { db: await backend.open() });
    let tried = 0;
    for (;;) {
      const [byA, byB] = await Promise.all([a.deliverDue(), b.deliverDue()]);
      tried += byA + byB;
      if (byA + byB === 0) break;
    }
    expect(tried).toBe(20);
    expect(sorted(delivered)).toEqual(keys);
    expect(await a.counts()).toEqual({ pending: 0, delivered: 20, dead: 0 });
  });

  test('a database failure during a pass is logged and the worker carries on once it is back', async () => {
    const receiver = new FakeReceiver('webhook');
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    const worker = outbox([receiver], { logger });
    worker.start();
    await database.db.schema.alterTable('notification_outbox').renameTo('notification_outbox_away').execute();
    worker.wake();
    await vi.waitFor(() => expect(lines.join('')).toContain('alert delivery pass failed'));
    await database.db.schema.alterTable('notification_outbox_away').renameTo('notification_outbox').execute();
    // Enqueued by another instance: nothing wakes this worker but its own timer.
    await outbox([receiver]).enqueue('webhook', notification('k'));
    await vi.waitFor(() => expect(receiver.delivered).toEqual(['k']), { timeout: 5000 });
    await worker.stop();
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
