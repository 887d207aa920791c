import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { migrateUp } from '../storage/migrator.ts';
import { type AlertChange, AlertEngine, type GroupingSettings, type SeriesSource } from './engine.ts';
import { type Aggregation, type AlertRule, type AlertRuleInput, compileRule } from './rules.ts';
import { Silences } from './silences.ts';
import type { Notification } from './types.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** Series values the test sets by hand, per series and window. */
class TestSeries implements SeriesSource {
  readonly values = new Map<string, number | null>();
  set(series: string, value: number | null, windowMs?: number): void {
    this.values.set(windowMs === undefined ? series : `${series}@${windowMs}`, value);
  }
  async evaluate(series: string, _aggregation: Aggregation, windowMs: number): Promise<number | null> {
    return this.values.get(`${series}@${windowMs}`) ?? this.values.get(series) ?? null;
  }
}

class RecordingSink {
  readonly sent: Array<{ channel: string; notification: Notification }> = [];
  readonly keys = new Set<string>();
  async enqueue(channel: string, notification: Notification): Promise<void> {
    // Like the outbox: one notification per idempotency key and channel.
    const key = `${notification.idempotencyKey}:${channel}`;
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.sent.push({ channel, notification });
  }
  take(): Array<{ channel: string; notification: Notification }> {
    return this.sent.splice(0);
  }
}

const CONTEXT = {
  series: new Set(['errors', 'cpu', 'ratio']),
  channels: new Set(['webhook', 'email', 'pager']),
};

function rule(input: Partial<AlertRuleInput> & { name: string }): AlertRule {
  return compileRule(
    {
      series: 'errors',
      aggregation: 'sum',
      window: '1m',
      op: '>',
      threshold: 0,
      severity: 'warning',
      channels: ['webhook'],
      ...input,
    },
    'config',
    CONTEXT,
  );
}

const SETTINGS: GroupingSettings = {
  groupWaitMs: 0,
  groupIntervalMs: MINUTE,
  repeatIntervalMs: 4 * 60 * MINUTE,
  escalation: null,
  consoleUrl: 'https://console.example.com',
};

describe('AlertEngine', () => {
  let database: Database;
  let clock: ManualClock;
  let series: TestSeries;
  let sink: RecordingSink;
  let silences: Silences;
  let changes: AlertChange[];

  function engine(settings: Partial<GroupingSettings> = {}, registry = new Registry()): AlertEngine {
    return new AlertEngine({
      db: database.db,
      clock,
      series,
      sink,
      silences,
      logger: pino({ level: 'silent' }),
      registry,
      settings: { ...SETTINGS, ...settings },
      onChange: (change) => changes.push(change),
    });
  }

  beforeEach(async () => {
    database = openDatabase({ url: 'sqlite::memory:' });
    await migrateUp(database);
    clock = new ManualClock();
    series = new TestSeries();
    sink = new RecordingSink();
    silences = new Silences({ db: database.db, clock });
    changes = [];
  });
  afterEach(async () => {
    await database.close();
  });

  it('with for: 0 fires at the first breach, notifies once, repeats after the repeat interval, and resolves', async () => {
    const alerts = engine();
    alerts.setRules([
      rule({ name: 'Errors', annotations: { summary: '{{ $value }} errors over {{ $threshold }}' } }),
    ]);
    series.set('errors', 3);
    await alerts.evaluate();
    const [first, ...others] = sink.take();
    expect(others).toEqual([]);
    expect(first?.channel).toBe('webhook');
    expect(first?.notification).toMatchObject({
      status: 'firing',
      severity: 'warning',
      url: 'https://console.example.com',
      commonLabels: { alertname: 'Errors', severity: 'warning' },
    });
    expect(first?.notification.alerts[0]?.annotations.summary).toBe('3 errors over 0');
    expect(changes.map((change) => change.event)).toEqual(['firing']);

    // Still firing: nothing new until the repeat interval.
    clock.advance(MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
    clock.advance(4 * 60 * MINUTE);
    await alerts.evaluate();
    expect(sink.take().map((sent) => sent.notification.status)).toEqual(['firing']);

    series.set('errors', 0);
    clock.advance(2 * MINUTE);
    await alerts.evaluate();
    const resolved = sink.take();
    expect(resolved.map((sent) => sent.notification.status)).toEqual(['resolved']);
    expect(resolved[0]?.notification.alerts[0]?.endsAt).not.toBeNull();
    expect(alerts.active()).toEqual([]);
  });

  it('keeps an alert pending for its `for` duration, and forgets it quietly when the breach ends first', async () => {
    const alerts = engine();
    alerts.setRules([rule({ name: 'Errors', for: '5m' })]);
    series.set('errors', 1);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
    clock.advance(2 * MINUTE);
    series.set('errors', 0);
    await alerts.evaluate();
    series.set('errors', 1);
    clock.advance(MINUTE);
    await alerts.evaluate();
    clock.advance(4 * MINUTE);
    await alerts.evaluate();
    // Pending again from the new breach: 4 minutes are not 5.
    expect(sink.take()).toEqual([]);
    clock.advance(MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toHaveLength(1);
    expect(changes.map((change) => change.event)).toEqual(['pending', 'pending', 'firing']);
  });

  it('groups alerts (group wait, then group interval for changes) and deduplicates by fingerprint', async () => {
    const alerts = engine({ groupWaitMs: 30 * SECOND });
    const shared = { group_by: ['team'], labels: { team: 'api' } };
    alerts.setRules([
      rule({ name: 'A', ...shared }),
      rule({ name: 'B', ...shared }),
      rule({ name: 'C', series: 'cpu', ...shared }),
    ]);
    series.set('errors', 5);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]); // group wait
    clock.advance(30 * SECOND);
    await alerts.evaluate();
    const grouped = sink.take();
    expect(grouped).toHaveLength(1);
    expect(grouped[0]?.notification.alerts.map((alert) => alert.rule).sort()).toEqual(['A', 'B']);
    expect(grouped[0]?.notification.commonLabels).toEqual({ team: 'api', severity: 'warning' });

    // C joins: told at the next group interval, with all three.
    series.set('cpu', 1);
    clock.advance(10 * SECOND);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
    clock.advance(MINUTE);
    await alerts.evaluate();
    expect(
      sink
        .take()[0]
        ?.notification.alerts.map((alert) => alert.rule)
        .sort(),
    ).toEqual(['A', 'B', 'C']);
  });

  it('mutes silenced alerts until the silence ends', async () => {
    const alerts = engine();
    alerts.setRules([rule({ name: 'Errors', labels: { service: 'billing' } })]);
    await silences.create({
      matchers: [{ name: 'service', value: 'billing', op: '=' }],
      startsAt: new Date(clock.now()).toISOString(),
      endsAt: new Date(clock.now() + 10 * MINUTE).toISOString(),
      author: 'ops@example.com',
      comment: 'maintenance',
      createdBy: null,
    });
    series.set('errors', 2);
    await alerts.evaluate();
    clock.advance(5 * MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
    expect(changes.map((change) => change.event)).toEqual(['firing', 'silenced']);
    clock.advance(5 * MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toHaveLength(1);
  });

  it('a silence that matches other labels mutes nothing', async () => {
    const alerts = engine();
    alerts.setRules([rule({ name: 'Errors', labels: { service: 'billing' } })]);
    await silences.create({
      matchers: [{ name: 'service', value: 'billing', op: '!=' }],
      startsAt: new Date(clock.now()).toISOString(),
      endsAt: new Date(clock.now() + 10 * MINUTE).toISOString(),
      author: 'ops@example.com',
      comment: 'other services',
      createdBy: null,
    });
    series.set('errors', 2);
    await alerts.evaluate();
    expect(sink.take()).toHaveLength(1);
  });

  it('a firing critical alert inhibits the warning of the same group', async () => {
    const alerts = engine();
    alerts.setRules([
      rule({
        name: 'Ratio critical',
        series: 'ratio',
        threshold: 0.1,
        severity: 'critical',
        labels: { group: 'ratio' },
      }),
      rule({
        name: 'Ratio warning',
        series: 'ratio',
        threshold: 0.01,
        severity: 'warning',
        labels: { group: 'ratio' },
      }),
    ]);
    series.set('ratio', 0.05);
    await alerts.evaluate();
    expect(sink.take().map((sent) => sent.notification.alerts[0]?.rule)).toEqual(['Ratio warning']);
    series.set('ratio', 0.5);
    clock.advance(2 * MINUTE);
    await alerts.evaluate();
    const sent = sink.take();
    expect(sent.map((item) => item.notification.alerts.map((alert) => alert.rule))).toEqual([
      ['Ratio critical'],
    ]);
    expect(
      changes.some((change) => change.event === 'inhibited' && change.alert.rule === 'Ratio warning'),
    ).toBe(true);
  });

  it('escalates a critical alert nobody acknowledged, and not one that was acknowledged', async () => {
    const escalation = { afterMs: 15 * MINUTE, channels: ['pager'] };
    const alerts = engine({ escalation });
    alerts.setRules([
      rule({ name: 'Down', severity: 'critical', channels: ['email'] }),
      rule({ name: 'Down too', series: 'cpu', severity: 'critical', channels: ['email'] }),
    ]);
    series.set('errors', 1);
    series.set('cpu', 1);
    await alerts.evaluate();
    expect(sink.take().map((sent) => sent.channel)).toEqual(['email', 'email']);
    const downToo = alerts.active().find((alert) => alert.rule === 'Down too');
    expect(await alerts.acknowledge(downToo?.fingerprint ?? '', 'user_1')).toBe(true);
    expect(await alerts.acknowledge(downToo?.fingerprint ?? '', 'user_1')).toBe(false);
    clock.advance(14 * MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
    clock.advance(MINUTE);
    await alerts.evaluate();
    const escalated = sink.take();
    expect(escalated.map((sent) => [sent.channel, sent.notification.alerts[0]?.rule])).toEqual([
      ['pager', 'Down'],
    ]);
    expect(escalated[0]?.notification.title).toMatch(/^\[ESCALATED\]/);
    clock.advance(MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
  });

  it('needs both windows of a multi-window rule to breach', async () => {
    const alerts = engine();
    alerts.setRules([
      rule({
        name: 'Burn',
        series: 'ratio',
        aggregation: 'ratio',
        window: '1h',
        also_window: '5m',
        threshold: 0.0144,
        severity: 'critical',
      }),
    ]);
    series.set('ratio', 0.05, 60 * MINUTE);
    series.set('ratio', 0.001, 5 * MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toEqual([]);
    series.set('ratio', 0.05, 5 * MINUTE);
    await alerts.evaluate();
    expect(sink.take()).toHaveLength(1);
  });

  it('another instance taking over continues from the stored state without notifying twice', async () => {
    const first = engine();
    const rules = [rule({ name: 'Errors' })];
    first.setRules(rules);
    series.set('errors', 1);
    await first.evaluate();
    expect(sink.take()).toHaveLength(1);

    const second = engine({}, new Registry());
    second.setRules(rules);
    await second.load();
    clock.advance(MINUTE);
    await second.evaluate();
    expect(sink.take()).toEqual([]);
    series.set('errors', 0);
    await second.evaluate();
    expect(sink.take().map((sent) => sent.notification.status)).toEqual(['resolved']);
  });

  it('resolves the alerts of a rule that was removed', async () => {
    const alerts = engine();
    alerts.setRules([rule({ name: 'Errors' })]);
    series.set('errors', 1);
    await alerts.evaluate();
    sink.take();
    alerts.setRules([]);
    clock.advance(2 * MINUTE);
    await alerts.evaluate();
    expect(sink.take().map((sent) => sent.notification.status)).toEqual(['resolved']);
  });
});
