import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../src/alerting/notifiers/webhook-notifier.ts';
import type { AlertRuleInput } from '../src/alerting/rules.ts';
import { ConfigError } from '../src/config/errors.ts';
import { loadConfig } from '../src/config/load-config.ts';
import type { BastionConfig } from '../src/config/schema.ts';
import { createApp } from '../src/server/create-app.ts';
import { createPostgresSchema, LogCapture, type TestApp } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { type ReceivedRequest, type Receiver, startReceiver } from './support/notifier-fixtures.ts';
import { DATABASE_URL_TEST, postgresAvailable } from './support/services.ts';

const SECRET = 'webhook-secret-for-tests-0123456789abcdef';
/** A query every detector reads as SQL injection: answered 403 and recorded as a security event. */
const ATTACK = "/api/v1/monitoring/status?q=1'%20OR%20'1'%3D'1";

/** A rule that fires at the first security event (the contract's example). */
const ATTACK_BURST: AlertRuleInput = {
  name: 'Attack burst',
  series: 'security.events',
  aggregation: 'sum',
  window: '1m',
  op: '>',
  threshold: 0,
  for: '0s',
  severity: 'critical',
  channels: ['webhook'],
  labels: { team: 'security' },
  annotations: { summary: '{{ $value }} security events in a minute' },
  enabled: true,
};

/** Fast sampling, evaluation and retries; no default rules (they would notify the receiver too). */
function fast(config: BastionConfig): void {
  config.metricHistory.sampleIntervalMs = 200;
  config.alerts.evaluationIntervalMs = 200;
  config.alerts.defaultRules = false;
  config.alerts.slo.availability = null;
  config.alerts.slo.latency = null;
  config.alerts.delivery.baseDelayMs = 50;
  config.alerts.delivery.maxDelayMs = 200;
  // Failing deliveries open a channel's breaker; rows it defers wait for its half-open time.
  config.alerts.delivery.breakerHalfOpenMs = 300;
  config.alerts.leaseTtlMs = 1500;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000) {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const payloadOf = (request: ReceivedRequest) =>
  JSON.parse(request.body) as {
    status: string;
    test: boolean;
    idempotency_key: string;
    alerts: Array<{ rule: string; status: string; fingerprint: string; labels: Record<string, string> }>;
  };

const alertsIn = (receiver: Receiver, rule: string, status = 'firing') =>
  receiver.received.filter(
    (request) =>
      !payloadOf(request).test &&
      payloadOf(request).alerts.some((alert) => alert.rule === rule && alert.status === status),
  );

describe('alerting through HTTP', () => {
  let current: TestApp | null = null;
  let receiver: Receiver | null = null;
  afterEach(async () => {
    await current?.close();
    current = null;
    await receiver?.close();
    receiver = null;
  });

  async function start(answer?: Parameters<typeof startReceiver>[0]) {
    receiver = await startReceiver(answer);
    current = await startIdentityApp({
      env: { ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET },
      configure: fast,
    });
    const admin = (await login(current.app, ADMIN.email, ADMIN.password)).access_token;
    return { app: current.app, admin, receiver };
  }

  it('a rule made through the API fires on a real attack and the signed webhook arrives once', async () => {
    const { app, admin, receiver } = await start();
    const created = await call(app, admin, 'POST', '/api/v1/alerts/rules', ATTACK_BURST);
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'Attack burst', source: 'api' });

    expect((await app.inject({ url: ATTACK })).statusCode).toBe(403);
    const [delivery] = await until('the webhook', () => {
      const found = alertsIn(receiver, 'Attack burst');
      return found.length > 0 ? found : undefined;
    });
    const request = delivery as ReceivedRequest;
    expect(request.headers['content-type']).toContain('application/json');
    const signature = request.headers['x-bastion-signature'] as string;
    expect(verifyWebhookSignature(signature, request.body, SECRET)).toBe(true);
    expect(verifyWebhookSignature(signature, request.body.replace('firing', 'resolved'), SECRET)).toBe(false);
    expect(verifyWebhookSignature(signature, request.body, 'another-secret')).toBe(false);
    const body = payloadOf(request);
    expect(request.headers['x-bastion-idempotency-key']).toBe(body.idempotency_key);
    expect(body.alerts[0]?.labels).toMatchObject({ alertname: 'Attack burst', team: 'security' });

    // Still firing: no second notification before the repeat interval.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(alertsIn(receiver, 'Attack burst')).toHaveLength(1);

    const active = await call(app, admin, 'GET', '/api/v1/alerts');
    const firing = (active.json() as { items: Array<{ rule: string; fingerprint: string }> }).items;
    const alert = firing.find((item) => item.rule === 'Attack burst');
    expect(alert).toBeDefined();
    const fingerprint = alert?.fingerprint as string;
    const ack = await call(app, admin, 'POST', `/api/v1/alerts/${fingerprint}/acknowledge`);
    expect(ack.statusCode).toBe(200);
    expect((await call(app, admin, 'POST', `/api/v1/alerts/${fingerprint}/acknowledge`)).statusCode).toBe(
      404,
    );

    const history = await call(app, admin, 'GET', '/api/v1/monitoring/alerts/history?rule=Attack%20burst');
    const events = (history.json() as { items: Array<{ event: string }> }).items.map((item) => item.event);
    expect(events).toEqual(expect.arrayContaining(['firing', 'notified', 'acknowledged']));

    const dashboard = await call(app, admin, 'GET', '/api/v1/monitoring/dashboard');
    expect(dashboard.statusCode).toBe(200);
    const overview = dashboard.json() as {
      alerts: Array<{ rule: string; acknowledged: boolean }>;
      threat: { threat_level: string };
      red: { series: Record<string, unknown[]> };
      current: Record<string, number | null>;
      top_routes: Array<{ route: string; requests: number }>;
      health: { status: string };
    };
    expect(overview.alerts).toContainEqual(
      expect.objectContaining({ rule: 'Attack burst', acknowledged: true }),
    );
    expect(Object.keys(overview.red.series).sort()).toEqual([
      'http.error_ratio',
      'http.latency_avg',
      'http.latency_p95',
      'http.requests',
    ]);
    expect(overview.current['security.events']).toBeGreaterThanOrEqual(1);
    expect(overview.top_routes.length).toBeGreaterThan(0);
    expect(['pass', 'warn']).toContain(overview.health.status);
  });

  it('refuses bad rules with a message, keeps file rules read-only, and audits changes', async () => {
    const { app, admin } = await start();
    const bad = await call(app, admin, 'POST', '/api/v1/alerts/rules', {
      ...ATTACK_BURST,
      series: 'no.such',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('series "no.such" does not exist');
    const badChannel = await call(app, admin, 'POST', '/api/v1/alerts/rules', {
      ...ATTACK_BURST,
      channels: ['pager'],
    });
    expect(badChannel.statusCode).toBe(400);
    expect(badChannel.json().message).toContain('channel "pager" is not configured');
    const extra = await call(app, admin, 'POST', '/api/v1/alerts/rules', {
      ...ATTACK_BURST,
      source: 'default',
    });
    expect(extra.statusCode).toBe(400);

    expect((await call(app, admin, 'POST', '/api/v1/alerts/rules', ATTACK_BURST)).statusCode).toBe(201);
    const twice = await call(app, admin, 'POST', '/api/v1/alerts/rules', ATTACK_BURST);
    expect(twice.statusCode).toBe(400);
    expect(twice.json().message).toContain('already exists');

    const updated = await call(app, admin, 'PUT', '/api/v1/alerts/rules/Attack%20burst', {
      ...ATTACK_BURST,
      threshold: 5,
    });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().threshold).toBe(5);
    const fetched = await call(app, admin, 'GET', '/api/v1/alerts/rules/Attack%20burst');
    expect(fetched.json()).toMatchObject({ threshold: 5, source: 'api' });
    expect((await call(app, admin, 'DELETE', '/api/v1/alerts/rules/Attack%20burst')).statusCode).toBe(204);
    expect((await call(app, admin, 'GET', '/api/v1/alerts/rules/Attack%20burst')).statusCode).toBe(404);

    const audit = await call(app, admin, 'GET', '/api/v1/admin/audit-events?limit=50');
    const actions = (audit.json() as { items: Array<{ action: string }> }).items.map((item) => item.action);
    expect(actions).toEqual(
      expect.arrayContaining(['alert_rule.create', 'alert_rule.update', 'alert_rule.delete']),
    );

    const series = await call(app, admin, 'GET', '/api/v1/alerts/series');
    const names = (series.json() as { items: Array<{ name: string }> }).items.map((item) => item.name);
    for (const name of [
      'http.requests',
      'http.error_ratio',
      'http.latency_p95',
      'system.cpu',
      'ws.disconnects',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('refuses to start with a bad rule or channel in the configuration, as a configuration error', async () => {
    const badRule = startIdentityApp({
      configure: (config) => {
        config.alerts.rules = [{ ...ATTACK_BURST, channels: ['log'], series: 'no.such' }];
      },
    });
    await expect(badRule).rejects.toBeInstanceOf(ConfigError);
    await expect(badRule).rejects.toThrow(/series "no\.such" does not exist/);
    const badChannel = startIdentityApp({
      configure: (config) => {
        config.alerts.channels = [{ name: 'ops', kind: 'webhook' }];
      },
    });
    await expect(badChannel).rejects.toBeInstanceOf(ConfigError);
    await expect(badChannel).rejects.toThrow(/ops/);
  });

  it('lists the default and SLO rules, and the channels without their secrets', async () => {
    receiver = await startReceiver();
    current = await startIdentityApp({
      env: { ALERT_WEBHOOK_URL: `${receiver.url}/hook-path-secret`, ALERT_WEBHOOK_SECRET: SECRET },
    });
    const admin = (await login(current.app, ADMIN.email, ADMIN.password)).access_token;
    const rules = (await call(current.app, admin, 'GET', '/api/v1/alerts/rules')).json() as {
      items: Array<{ name: string; source: string; series: string; threshold: number }>;
    };
    const byName = new Map(rules.items.map((rule) => [rule.name, rule]));
    expect(byName.get('High CPU')).toMatchObject({ source: 'default', series: 'system.cpu', threshold: 90 });
    expect(byName.get('Error ratio critical')).toMatchObject({ threshold: 0.1 });
    expect(byName.get('Availability burn rate 14.4x')).toMatchObject({ source: 'slo' });
    expect(byName.get('Latency burn rate 6x')).toMatchObject({ source: 'slo' });
    const channels = await call(current.app, admin, 'GET', '/api/v1/alerts/channels');
    expect(channels.statusCode).toBe(200);
    const text = channels.body;
    expect(text).toContain('"webhook"');
    expect(text).toContain('"log"');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('hook-path-secret');
  });

  it('the monitoring endpoints answer with real data: series now and over time, detailed health', async () => {
    const { app, admin } = await start();
    for (let i = 0; i < 5; i += 1) expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
    await app.inject({ url: ATTACK });
    await app.bastion.metricHistory.sampleNow();
    const now = (await call(app, admin, 'GET', '/api/v1/monitoring/metrics')).json() as {
      series: Record<string, number | null>;
    };
    expect(now.series['http.requests']).toBeGreaterThanOrEqual(6);
    expect(now.series['security.events']).toBe(1);
    expect(now.series['security.events.sqli']).toBe(1);
    expect(now.series['system.memory']).toBeGreaterThan(0);
    expect(now.series['process.uptime']).toBeGreaterThan(0);

    const application = await call(app, admin, 'GET', '/api/v1/monitoring/metrics/application?minutes=5');
    expect(application.statusCode).toBe(200);
    const range = application.json() as {
      step_seconds: number;
      series: Record<string, Array<{ t: string; value: number | null }>>;
    };
    expect(range.step_seconds).toBe(10);
    const requests = range.series['http.requests'] ?? [];
    expect(requests.length).toBeGreaterThanOrEqual(30);
    expect(requests.some((point) => (point.value ?? 0) > 0)).toBe(true);
    expect(Object.keys(range.series).every((name) => /^(http|db|ws|alerts)\./.test(name))).toBe(true);
    const security = (
      await call(app, admin, 'GET', '/api/v1/monitoring/metrics/security?minutes=5')
    ).json() as { series: Record<string, unknown> };
    expect(Object.keys(security.series)).toEqual(
      expect.arrayContaining(['security.events', 'auth.failures']),
    );
    const system = (await call(app, admin, 'GET', '/api/v1/monitoring/metrics/system')).json() as {
      series: Record<string, unknown>;
    };
    expect(Object.keys(system.series)).toEqual(expect.arrayContaining(['system.cpu', 'process.uptime']));
    expect((await call(app, admin, 'GET', '/api/v1/monitoring/metrics/system?minutes=0')).statusCode).toBe(
      400,
    );

    const detailed = await call(app, admin, 'GET', '/api/v1/monitoring/health/detailed');
    expect(detailed.statusCode).toBe(200);
    expect(detailed.json()).toMatchObject({
      alerting: { evaluating_here: true, notifications: { pending: 0, dead: 0 } },
      checks: expect.any(Object),
    });
  });

  it('needs alerts:read to read and alerts:manage to change; nothing without a token', async () => {
    const { app, admin } = await start();
    await createUser(app, admin, 'plain@bastion.test');
    const plain = (await login(app, 'plain@bastion.test', STRONG_PASSWORD)).access_token;
    for (const [method, url] of [
      ['GET', '/api/v1/alerts'],
      ['GET', '/api/v1/alerts/rules'],
      ['POST', '/api/v1/alerts/rules'],
      ['GET', '/api/v1/alerts/silences'],
      ['GET', '/api/v1/alerts/notifications'],
      ['POST', '/api/v1/alerts/channels/webhook/test'],
      ['GET', '/api/v1/monitoring/alerts/history'],
      ['GET', '/api/v1/monitoring/dashboard'],
      ['GET', '/api/v1/monitoring/metrics/system'],
    ] as const) {
      const payload = method === 'POST' ? ATTACK_BURST : undefined;
      expect((await call(app, null, method, url, payload)).statusCode, `${method} ${url}`).toBe(401);
      expect((await call(app, plain, method, url, payload)).statusCode, `${method} ${url}`).toBe(403);
    }
    // The public health and status say nothing but a word.
    const status = await app.inject({ url: '/api/v1/monitoring/status' });
    expect(status.statusCode).toBe(200);
    expect(Object.keys(status.json()).sort()).toEqual(['status', 'time']);
    const health = await app.inject({ url: '/api/v1/monitoring/health' });
    expect(Object.keys(health.json())).toEqual(['status']);
  });

  it('a silence mutes a matching rule while it lasts; one for other labels mutes nothing', async () => {
    const { app, admin, receiver } = await start();
    const rule = (name: string, team: string) => ({ ...ATTACK_BURST, name, labels: { team } });
    expect((await call(app, admin, 'POST', '/api/v1/alerts/rules', rule('Muted', 'ops'))).statusCode).toBe(
      201,
    );
    expect((await call(app, admin, 'POST', '/api/v1/alerts/rules', rule('Heard', 'dev'))).statusCode).toBe(
      201,
    );
    const silence = await call(app, admin, 'POST', '/api/v1/alerts/silences', {
      matchers: [{ name: 'team', value: 'ops', op: '=' }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      comment: 'maintenance',
    });
    expect(silence.statusCode).toBe(201);
    expect(
      (
        await call(app, admin, 'POST', '/api/v1/alerts/silences', {
          matchers: [],
          ends_at: new Date(Date.now() + 3600_000).toISOString(),
          comment: 'everything',
        })
      ).statusCode,
    ).toBe(400);
    const past = await call(app, admin, 'POST', '/api/v1/alerts/silences', {
      matchers: [{ name: 'team', value: 'ops', op: '=' }],
      ends_at: new Date(Date.now() - 1000).toISOString(),
      comment: 'already over',
    });
    expect(past.statusCode).toBe(400);

    await app.inject({ url: ATTACK });
    await until('the unsilenced rule', () => (alertsIn(receiver, 'Heard').length > 0 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(alertsIn(receiver, 'Muted')).toHaveLength(0);

    const id = (silence.json() as { id: string }).id;
    expect((await call(app, admin, 'DELETE', `/api/v1/alerts/silences/${id}`)).statusCode).toBe(204);
    await until('the rule once its silence ended', () =>
      alertsIn(receiver, 'Muted').length > 0 ? true : undefined,
    );
  });

  it('a channel test reports delivery; a refusing receiver dead-letters, and a retry delivers', async () => {
    let refuse = true;
    const { app, admin, receiver } = await start((_request, response) => {
      response.statusCode = refuse ? 400 : 200;
      response.end();
    });
    refuse = false;
    const tested = await call(app, admin, 'POST', '/api/v1/alerts/channels/webhook/test');
    expect(tested.json()).toEqual({ channel: 'webhook', delivered: true, error: null });
    const sent = payloadOf(receiver.received.at(-1) as ReceivedRequest);
    expect(sent.test).toBe(true);
    expect((await call(app, admin, 'POST', '/api/v1/alerts/channels/nope/test')).statusCode).toBe(404);

    refuse = true;
    const failed = await call(app, admin, 'POST', '/api/v1/alerts/channels/webhook/test');
    expect(failed.json()).toMatchObject({ delivered: false });

    // A permanent refusal (400) is not retried: the notification is a dead letter at once.
    await call(app, admin, 'POST', '/api/v1/alerts/rules', ATTACK_BURST);
    await app.inject({ url: ATTACK });
    const dead = await until('the dead letter', async () => {
      const page = (await call(app, admin, 'GET', '/api/v1/alerts/notifications?status=dead')).json() as {
        items: Array<{ id: string; alerts: string[]; last_error: string | null; attempts: number }>;
      };
      return page.items.find((item) => item.alerts.includes('Attack burst'));
    });
    expect(dead.last_error).toContain('400');
    refuse = false;
    expect((await call(app, admin, 'POST', `/api/v1/alerts/notifications/${dead.id}/retry`)).statusCode).toBe(
      200,
    );
    await until('the retried delivery', () =>
      alertsIn(receiver, 'Attack burst').length > 0 ? true : undefined,
    );
    // The receiver answers before the outbox marks the row delivered.
    await until('the row marked delivered', async () => {
      const page = (
        await call(app, admin, 'GET', '/api/v1/alerts/notifications?status=delivered')
      ).json() as {
        items: Array<{ id: string }>;
      };
      return page.items.some((item) => item.id === dead.id) ? true : undefined;
    });
  });
});

describe.skipIf(!(await postgresAvailable()))('alerting across instances and restarts (PostgreSQL)', () => {
  let schema = '';
  let masterKey = '';
  const apps: FastifyInstance[] = [];
  const dirs: string[] = [];
  let receiver: Receiver | null = null;

  beforeAll(() => {
    masterKey = randomBytes(32).toString('base64');
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close().catch(() => {});
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
    await receiver?.close();
    receiver = null;
  });

  async function instance(webhookUrl: string, rules: AlertRuleInput[] = [ATTACK_BURST]) {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-test-'));
    dirs.push(dataDir);
    const config = await loadConfig({
      file: null,
      env: {
        NODE_ENV: 'test',
        BASTION_DATA_DIR: dataDir,
        LOG_LEVEL: 'silent',
        DATABASE_URL: DATABASE_URL_TEST,
        BASTION_MASTER_KEY: masterKey,
        BASTION_ADMIN_EMAIL: ADMIN.email,
        BASTION_ADMIN_PASSWORD: ADMIN.password,
        ALERT_WEBHOOK_URL: webhookUrl,
        ALERT_WEBHOOK_SECRET: SECRET,
      },
    });
    config.loadShedding.enabled = false;
    config.protection.rateLimit.enabled = false;
    config.protection.threat.enabled = false;
    fast(config);
    config.alerts.rules = rules;
    const app = await createApp({ config, logDestination: new LogCapture(), databaseSchema: schema });
    apps.push(app);
    return app;
  }

  it('exactly one instance evaluates; when it dies another takes over within the lease and delivers', async () => {
    schema = (await createPostgresSchema()).schema;
    receiver = await startReceiver();
    const one = await instance(receiver.url);
    const two = await instance(receiver.url);
    await until('a leader', () =>
      one.bastion.alerts.leader || two.bastion.alerts.leader ? true : undefined,
    );
    expect(one.bastion.alerts.leader).not.toBe(two.bastion.alerts.leader);
    const [leader, follower] = one.bastion.alerts.leader ? [one, two] : [two, one];

    // The leader dies without giving up its lease (a crash, not a graceful stop).
    const died = Date.now();
    await leader.bastion.alerts.close({ releaseLease: false });
    await leader.close();
    await until(
      'the follower to take over',
      () => (follower.bastion.alerts.leader ? true : undefined),
      30_000,
    );
    expect(Date.now() - died).toBeLessThan(30_000);

    // The attack hits the surviving instance; it evaluates and delivers.
    expect((await follower.inject({ url: ATTACK })).statusCode).toBe(403);
    await until('delivery by the new leader', () =>
      alertsIn(receiver as Receiver, 'Attack burst').length > 0 ? true : undefined,
    );
    expect(alertsIn(receiver, 'Attack burst')).toHaveLength(1);
  });

  it('a receiver outage with the server restarted mid-retry: every notification is delivered once afterwards', async () => {
    schema = (await createPostgresSchema()).schema;
    let down = true;
    receiver = await startReceiver((_request, response) => {
      response.statusCode = down ? 503 : 200;
      response.end();
    });
    const rules = ['One', 'Two', 'Three'].map((name) => ({ ...ATTACK_BURST, name }));
    const first = await instance(receiver.url, rules);
    expect((await first.inject({ url: ATTACK })).statusCode).toBe(403);
    await until('failed attempts', () => {
      const failed = receiver?.received.filter((request) => !payloadOf(request).test) ?? [];
      const rulesTried = new Set(failed.flatMap((request) => payloadOf(request).alerts.map((a) => a.rule)));
      // Past the breaker's threshold (5): the restart finds rows the open breaker deferred.
      return rulesTried.size === 3 && failed.length >= 6 ? true : undefined;
    });
    const pending = await first.bastion.alerts.outbox.list({ status: 'pending', limit: 10 });
    expect(pending.length).toBe(3);

    // Restart: the first server stops, a new one starts on the same database, the receiver returns.
    await first.close();
    apps.splice(apps.indexOf(first), 1);
    receiver.received.length = 0;
    down = false;
    const second = await instance(receiver.url, rules);
    await until('every notification', () => {
      const got = rules.filter((rule) => alertsIn(receiver as Receiver, rule.name).length > 0);
      return got.length === 3 ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    for (const rule of rules) expect(alertsIn(receiver, rule.name)).toHaveLength(1);
    expect(await second.bastion.alerts.outbox.counts()).toMatchObject({ pending: 0, dead: 0, delivered: 3 });
  });
});
