import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { alertView } from '../alerting/alert-view.ts';
import type { OutboxEntry } from '../alerting/outbox.ts';
import { AlertRuleSchema } from '../alerting/rules.ts';
import { MatcherSchema, type Silence } from '../alerting/silences.ts';
import type { Notification } from '../alerting/types.ts';
import { BastionError, HttpErrors } from '../core/errors.ts';
import { actorOf, requestContext } from '../identity/audit-log.ts';
import { Closed, DEFAULT_LIMIT, Id, ListQuery, Page } from './schemas.ts';
import type { Services } from './services.ts';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const Labels = Type.Record(Type.String(), Type.String());

const AlertView = Type.Object({
  fingerprint: Type.String(),
  rule: Type.String(),
  status: Type.String({ description: 'firing or resolved' }),
  severity: Type.String(),
  labels: Labels,
  annotations: Labels,
  value: Type.Union([Type.Number(), Type.Null()]),
  starts_at: Type.String(),
  ends_at: NullableString,
  acknowledged: Type.Boolean(),
});

const RuleView = Type.Object(
  { ...AlertRuleSchema.properties, source: Type.String({ description: 'default, config, slo or api' }) },
  { additionalProperties: false },
);

const SilenceView = Type.Object({
  id: Type.String(),
  matchers: Type.Array(MatcherSchema),
  starts_at: Type.String(),
  ends_at: Type.String(),
  author: Type.String(),
  comment: Type.String(),
  created_by: NullableString,
  created_at: Type.String(),
});

const NotificationView = Type.Object({
  id: Type.String(),
  idempotency_key: Type.String(),
  channel: Type.String(),
  status: Type.String({ description: 'pending, delivered or dead' }),
  attempts: Type.Integer(),
  next_attempt_at: Type.String(),
  last_error: NullableString,
  created_at: Type.String(),
  delivered_at: NullableString,
  title: Type.String(),
  alerts: Type.Array(Type.String(), { description: 'Rule names' }),
});

const HistoryView = Type.Object({
  id: Type.String(),
  fingerprint: Type.String(),
  rule: Type.String(),
  event: Type.String(),
  severity: Type.String(),
  value: Type.Union([Type.Number(), Type.Null()]),
  details: Type.Object({}, { additionalProperties: true }),
  at: Type.String(),
});

const RuleName = Closed({ name: Type.String({ minLength: 1, maxLength: 200 }) });

function silenceView(silence: Silence) {
  return {
    id: silence.id,
    matchers: silence.matchers,
    starts_at: silence.startsAt,
    ends_at: silence.endsAt,
    author: silence.author,
    comment: silence.comment,
    created_by: silence.createdBy,
    created_at: silence.createdAt,
  };
}

function notificationView(entry: OutboxEntry) {
  return {
    id: entry.id,
    idempotency_key: entry.idempotencyKey,
    channel: entry.channel,
    status: entry.status,
    attempts: entry.attempts,
    next_attempt_at: entry.nextAttemptAt,
    last_error: entry.lastError,
    created_at: entry.createdAt,
    delivered_at: entry.deliveredAt,
    title: entry.notification.title,
    alerts: entry.notification.alerts.map((alert) => alert.rule),
  };
}

/** A TypeError from the alerting service (a bad rule or silence) as a 400 saying what is wrong. */
async function refusingBadInput<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TypeError) throw new BastionError(HttpErrors.validation, { message: error.message });
    throw error;
  }
}

/** `{items, next_cursor}` from one row more than the page (the cursor is the last id shown). */
function pageOf<T extends { id: string }>(rows: T[], limit: number) {
  const items = rows.slice(0, limit);
  return { items, next_cursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
}

/**
 * The alerting API: alerts (acknowledgement), rules, silences, channels (with a test send),
 * the series rules can use, the notification outbox with its dead letters, and the alert
 * history. Reading needs `alerts:read`, changing `alerts:manage`; changes are audited.
 */
export function registerAlertRoutes(app: FastifyInstance, services: Services): void {
  const { alerts, identity } = services;
  const tags = ['alerts'];
  const base = '/api/v1/alerts';
  const audit = (request: FastifyRequest, action: string, id: string | null, details = {}) =>
    identity.audit.record({
      category: 'change',
      action,
      actor: actorOf(request.principal),
      target: { type: action.split('.')[0] as string, id },
      details,
      context: requestContext(request),
    });

  app.get(
    base,
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary: 'Alerts pending or firing now',
        response: { 200: Type.Object({ items: Type.Array(AlertView) }) },
      },
    },
    async () => ({ items: (await alerts.activeAlerts()).map(alertView) }),
  );

  app.post(
    `${base}/:fingerprint/acknowledge`,
    {
      config: { auth: 'alerts:manage' },
      schema: {
        tags,
        summary: 'Acknowledge a firing alert (stops its escalation and repeats)',
        params: Closed({ fingerprint: Type.String({ pattern: '^[0-9a-f]{32}$' }) }),
        response: { 200: Type.Object({ acknowledged: Type.Boolean() }) },
      },
    },
    async (request) => {
      const { fingerprint } = request.params as { fingerprint: string };
      const by = request.principal?.userId ?? request.principal?.id ?? 'unknown';
      if (!(await alerts.acknowledge(fingerprint, by))) {
        throw new BastionError(HttpErrors.notFound, {
          message: 'No unacknowledged firing alert with this id',
        });
      }
      await audit(request, 'alert.acknowledge', fingerprint);
      return { acknowledged: true };
    },
  );

  app.get(
    `${base}/series`,
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary: 'The series alert rules can use',
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({ name: Type.String(), unit: Type.String(), description: Type.String() }),
            ),
          }),
        },
      },
    },
    async () => ({
      items: services.metricHistory.list().map((series) => ({
        name: series.name,
        unit: series.unit,
        description: series.description,
      })),
    }),
  );

  app.get(
    `${base}/rules`,
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary: 'Every rule: defaults, SLO burn rates, the config file and the API',
        response: { 200: Type.Object({ items: Type.Array(RuleView) }) },
      },
    },
    async () => ({ items: alerts.rules() }),
  );

  app.get(
    `${base}/rules/:name`,
    {
      config: { auth: 'alerts:read' },
      schema: { tags, summary: 'One rule', params: RuleName, response: { 200: RuleView } },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const rule = alerts.rules().find((candidate) => candidate.name === name);
      if (!rule) throw new BastionError(HttpErrors.notFound, { message: 'No alert rule of that name' });
      return rule;
    },
  );

  app.post(
    `${base}/rules`,
    {
      config: { auth: 'alerts:manage' },
      schema: { tags, summary: 'Create a rule', body: AlertRuleSchema, response: { 201: RuleView } },
    },
    async (request, reply) => {
      const creator = request.principal?.userId ?? null;
      const rule = await refusingBadInput(() => alerts.createRule(request.body, creator));
      await audit(request, 'alert_rule.create', rule.name, { series: rule.series, severity: rule.severity });
      return reply.code(201).send(rule);
    },
  );

  app.put(
    `${base}/rules/:name`,
    {
      config: { auth: 'alerts:manage' },
      schema: {
        tags,
        summary: 'Replace a rule made through the API (rules of files are changed in the file)',
        params: RuleName,
        body: AlertRuleSchema,
        response: { 200: RuleView },
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const rule = await refusingBadInput(() => alerts.updateRule(name, request.body));
      if (!rule) throw new BastionError(HttpErrors.notFound, { message: 'No API alert rule of that name' });
      await audit(request, 'alert_rule.update', name, { name: rule.name });
      return rule;
    },
  );

  app.delete(
    `${base}/rules/:name`,
    {
      config: { auth: 'alerts:manage' },
      schema: { tags, summary: 'Delete a rule made through the API', params: RuleName },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      if (!(await alerts.deleteRule(name))) {
        throw new BastionError(HttpErrors.notFound, { message: 'No API alert rule of that name' });
      }
      await audit(request, 'alert_rule.delete', name);
      return reply.code(204).send();
    },
  );

  app.get(
    `${base}/silences`,
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary: 'Silences in force (and ended ones with ?expired=true)',
        querystring: Closed({ expired: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ items: Type.Array(SilenceView) }) },
      },
    },
    async (request) => {
      const { expired } = request.query as { expired?: boolean };
      return { items: (await alerts.silences.list({ includeExpired: expired === true })).map(silenceView) };
    },
  );

  app.post(
    `${base}/silences`,
    {
      config: { auth: 'alerts:manage' },
      schema: {
        tags,
        summary: 'Silence alerts whose labels match every matcher, between starts_at and ends_at',
        body: Closed({
          matchers: Type.Array(MatcherSchema, { minItems: 1, maxItems: 20 }),
          starts_at: Type.Optional(Type.String({ format: 'date-time' })),
          ends_at: Type.String({ format: 'date-time' }),
          comment: Type.String({ minLength: 1, maxLength: 1000 }),
          author: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 200,
              description: 'Who to ask about it (default: your id)',
            }),
          ),
        }),
        response: { 201: SilenceView },
      },
    },
    async (request, reply) => {
      const body = request.body as {
        matchers: Silence['matchers'];
        starts_at?: string;
        ends_at: string;
        comment: string;
        author?: string;
      };
      const principal = request.principal;
      const silence = await refusingBadInput(() =>
        alerts.silences.create({
          matchers: body.matchers,
          startsAt: body.starts_at ?? new Date(services.clock.now()).toISOString(),
          endsAt: body.ends_at,
          author: body.author ?? principal?.userId ?? principal?.id ?? 'unknown',
          comment: body.comment,
          createdBy: principal?.userId ?? null,
        }),
      );
      await audit(request, 'alert_silence.create', silence.id, {
        matchers: silence.matchers,
        ends_at: silence.endsAt,
      });
      return reply.code(201).send(silenceView(silence));
    },
  );

  app.delete(
    `${base}/silences/:id`,
    {
      config: { auth: 'alerts:manage' },
      schema: { tags, summary: 'End a silence now', params: Closed({ id: Id }) },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await alerts.silences.expire(id))) {
        throw new BastionError(HttpErrors.notFound, { message: 'No active silence with this id' });
      }
      await audit(request, 'alert_silence.expire', id);
      return reply.code(204).send();
    },
  );

  app.get(
    `${base}/channels`,
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary: 'Configured channels (without secrets) and their circuit breakers',
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object(
                { name: Type.String(), kind: Type.String(), breaker: Type.String() },
                { additionalProperties: true },
              ),
            ),
          }),
        },
      },
    },
    async () => {
      const breakers = alerts.outbox.breakerStates();
      return {
        items: alerts
          .channels()
          .map((channel) => ({ ...channel, breaker: breakers[channel.name] ?? 'closed' })),
      };
    },
  );

  app.post(
    `${base}/channels/:name/test`,
    {
      config: { auth: 'alerts:manage', rateLimit: { points: 10, durationSeconds: 60 } },
      schema: {
        tags,
        summary: 'Send a test notification through a channel now and report the outcome',
        params: Closed({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: {
          200: Type.Object({ channel: Type.String(), delivered: Type.Boolean(), error: NullableString }),
        },
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      if (!alerts.hasChannel(name))
        throw new BastionError(HttpErrors.notFound, { message: 'No such channel' });
      const result = await alerts.testChannel(name, testNotification(services.clock.now(), request.id));
      await audit(request, 'alert_channel.test', name, { delivered: result.delivered });
      return { channel: name, ...result };
    },
  );

  app.get(
    `${base}/notifications`,
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary: 'The notification outbox, newest first (status=dead: the dead letters)',
        querystring: Closed({
          ...ListQuery.properties,
          status: Type.Optional(
            Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')]),
          ),
        }),
        response: { 200: Page(NotificationView) },
      },
    },
    async (request) => {
      const query = request.query as { limit?: number; cursor?: string; status?: OutboxEntry['status'] };
      const limit = query.limit ?? DEFAULT_LIMIT;
      const rows = await alerts.outbox.list({ status: query.status, limit: limit + 1, before: query.cursor });
      return pageOf(rows.map(notificationView), limit);
    },
  );

  app.post(
    `${base}/notifications/:id/retry`,
    {
      config: { auth: 'alerts:manage' },
      schema: {
        tags,
        summary: 'Put a dead-lettered notification back in line',
        params: Closed({ id: Id }),
        response: { 200: Type.Object({ retried: Type.Boolean() }) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      if (!(await alerts.outbox.retry(id))) {
        throw new BastionError(HttpErrors.notFound, {
          message: 'No dead-lettered notification with this id',
        });
      }
      await audit(request, 'alert_notification.retry', id);
      return { retried: true };
    },
  );

  app.get(
    '/api/v1/monitoring/alerts/history',
    {
      config: { auth: 'alerts:read' },
      schema: {
        tags,
        summary:
          'What happened to alerts (pending, firing, resolved, acknowledged, escalated, notified…), newest first',
        querystring: Closed({
          ...ListQuery.properties,
          rule: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        }),
        response: { 200: Page(HistoryView) },
      },
    },
    async (request) => {
      const query = request.query as { limit?: number; cursor?: string; rule?: string };
      const limit = query.limit ?? DEFAULT_LIMIT;
      const rows = await alerts.history({ limit: limit + 1, before: query.cursor, rule: query.rule });
      return pageOf(rows, limit);
    },
  );
}

/** What a channel's test endpoint sends: clearly a test, never mistaken for a real alert. */
function testNotification(now: number, requestId: string): Notification {
  const at = new Date(now).toISOString();
  return {
    idempotencyKey: `test:${requestId}`,
    groupKey: 'test',
    status: 'firing',
    severity: 'info',
    commonLabels: { alertname: 'Bastion test notification' },
    alerts: [
      {
        fingerprint: '0'.repeat(32),
        rule: 'Bastion test notification',
        status: 'firing',
        severity: 'info',
        labels: { alertname: 'Bastion test notification', severity: 'info' },
        annotations: { summary: 'This is a test of the channel; no action is needed.' },
        value: null,
        startsAt: at,
        endsAt: null,
        acknowledged: false,
      },
    ],
    title: '[TEST] Bastion test notification',
    url: null,
    createdAt: at,
    test: true,
  };
}
