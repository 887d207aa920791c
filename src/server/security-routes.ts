import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../core/errors.ts';
import { parseCidr, parseIp } from '../core/ip-address.ts';
import { actorOf, requestContext } from '../identity/audit-log.ts';
import { cidrProblem } from '../protection/ip-rules.ts';
import { Closed, DEFAULT_LIMIT, Id, ListQuery, Page } from './schemas.ts';
import type { Services } from './services.ts';

const Address = Type.String({ minLength: 2, maxLength: 64, description: 'An IPv4 or IPv6 address' });
const Cidr = Type.String({ minLength: 2, maxLength: 64, description: 'A CIDR, e.g. 203.0.113.0/24' });
const Target = { ip: Type.Optional(Address), cidr: Type.Optional(Cidr) };
const NullableString = Type.Union([Type.String(), Type.Null()]);

const IpRuleView = Type.Object({
  id: Type.String(),
  cidr: Type.String(),
  action: Type.String(),
  reason: Type.String(),
  source: Type.String({ description: 'config, api or ban' }),
  created_by: NullableString,
  created_at: NullableString,
  expires_at: NullableString,
});

const IncidentView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  severity: Type.String(),
  client_ip: NullableString,
  status: Type.String({ description: 'open, acknowledged or resolved' }),
  event_count: Type.Integer(),
  first_seen_at: Type.String(),
  last_seen_at: Type.String(),
  acknowledged_by: NullableString,
  acknowledged_at: NullableString,
  resolved_by: NullableString,
  resolved_at: NullableString,
});

const SecurityEventView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  attack_class: NullableString,
  severity: Type.String(),
  client_ip: NullableString,
  method: NullableString,
  route: NullableString,
  request_id: NullableString,
  blocked: Type.Boolean(),
  details: Type.Object({}, { additionalProperties: true }),
  created_at: Type.String(),
});

/** The address or CIDR named by `{ip}` or `{cidr}` (exactly one), or a 400. */
function targetOf(body: { ip?: string; cidr?: string }): string {
  if ((body.ip === undefined) === (body.cidr === undefined)) {
    throw new BastionError(HttpErrors.validation, { message: 'Give exactly one of ip or cidr' });
  }
  const text = (body.ip ?? body.cidr) as string;
  const problem =
    body.ip !== undefined && parseIp(text) === null ? `"${text}" is not an IP address` : cidrProblem(text);
  if (problem) throw new BastionError(HttpErrors.validation, { message: problem });
  return text;
}

/**
 * The security admin API: IP blocks (`security:manage`), the rule list and stored security
 * events (`security:read`). These act on the whole server, so they are platform routes.
 */
export function registerSecurityRoutes(app: FastifyInstance, services: Services): void {
  const { ipRules, securityEvents, identity, incidents } = services;
  const tags = ['security'];
  const base = '/api/v1/monitoring/security';

  app.post(
    `${base}/block-ip`,
    {
      config: { auth: 'security:manage' },
      schema: {
        tags,
        summary: 'Block an address or CIDR on every instance',
        body: Closed({
          ...Target,
          reason: Type.String({ minLength: 1, maxLength: 500 }),
          duration_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86_400 })),
        }),
        response: { 201: IpRuleView },
      },
    },
    async (request, reply) => {
      const body = request.body as { ip?: string; cidr?: string; reason: string; duration_seconds?: number };
      const target = targetOf(body);
      const range = parseCidr(target);
      const own = parseIp(request.ip);
      // An operator who blocks their own address is locked out of the console that could undo it.
      if (range && own !== null && own >= range.start && own <= range.end) {
        throw new BastionError(HttpErrors.conflict, { message: 'This rule would block your own address' });
      }
      const rule = await ipRules.add({
        cidr: target,
        action: 'deny',
        reason: body.reason,
        source: 'api',
        durationSeconds: body.duration_seconds ?? null,
        createdBy: request.principal?.userId ?? null,
      });
      await identity.audit.record({
        category: 'security',
        action: 'ip.block',
        actor: actorOf(request.principal),
        target: { type: 'ip_rule', id: rule.id },
        details: { cidr: rule.cidr, reason: rule.reason, expires_at: rule.expires_at },
        context: requestContext(request),
      });
      return reply.code(201).send(rule);
    },
  );

  app.post(
    `${base}/unblock-ip`,
    {
      config: { auth: 'security:manage' },
      schema: {
        tags,
        summary: 'Remove the blocks (and bans) of exactly this address or CIDR',
        body: Closed(Target),
        response: { 200: Type.Object({ removed: Type.Integer() }) },
      },
    },
    async (request) => {
      const target = targetOf(request.body as { ip?: string; cidr?: string });
      const removed = await ipRules.remove(target, 'deny');
      if (removed === 0)
        throw new BastionError(HttpErrors.notFound, { message: 'No block for this address' });
      await identity.audit.record({
        category: 'security',
        action: 'ip.unblock',
        actor: actorOf(request.principal),
        target: undefined,
        details: { cidr: target, removed },
        context: requestContext(request),
      });
      return { removed };
    },
  );

  app.get(
    `${base}/ip-rules`,
    {
      config: { auth: 'security:read' },
      schema: {
        tags,
        summary: 'The allow and deny rules in force (config file, API, bans)',
        response: { 200: Type.Object({ items: Type.Array(IpRuleView) }) },
      },
    },
    async () => ({ items: ipRules.list() }),
  );

  app.get(
    `${base}/events`,
    {
      config: { auth: 'security:read' },
      schema: {
        tags,
        summary: 'Stored security events, newest first',
        querystring: Closed({
          ...ListQuery.properties,
          kind: Type.Optional(Type.String({ pattern: '^[a-z_]{1,32}$' })),
        }),
        response: { 200: Page(SecurityEventView) },
      },
    },
    async (request) => {
      const query = request.query as { limit?: number; cursor?: string; kind?: string };
      const limit = query.limit ?? DEFAULT_LIMIT;
      await securityEvents.flush();
      const items = await securityEvents.list({ limit: limit + 1, before: query.cursor, kind: query.kind });
      const page = items.slice(0, limit);
      return { items: page, next_cursor: items.length > limit ? (page.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    `${base}/status`,
    {
      config: { auth: 'security:read' },
      schema: {
        tags,
        summary: 'Threat level (low, elevated, high, critical) and what it is made of, over the last hour',
        response: {
          200: Type.Object({
            threat_level: Type.String(),
            window_minutes: Type.Integer(),
            events_last_hour: Type.Record(Type.String(), Type.Integer()),
            blocked_last_hour: Type.Integer(),
            open_incidents: Type.Record(Type.String(), Type.Integer()),
            active_bans: Type.Integer(),
          }),
        },
      },
    },
    async () => {
      await securityEvents.flush();
      return incidents.status();
    },
  );

  app.get(
    `${base}/incidents`,
    {
      config: { auth: 'security:read' },
      schema: {
        tags,
        summary: 'Security incidents, newest first',
        querystring: Closed({
          ...ListQuery.properties,
          status: Type.Optional(
            Type.Union([Type.Literal('open'), Type.Literal('acknowledged'), Type.Literal('resolved')]),
          ),
        }),
        response: { 200: Page(IncidentView) },
      },
    },
    async (request) => {
      const query = request.query as { limit?: number; cursor?: string; status?: string };
      const limit = query.limit ?? DEFAULT_LIMIT;
      await securityEvents.flush();
      const items = await incidents.list({ limit: limit + 1, before: query.cursor, status: query.status });
      const page = items.slice(0, limit);
      return { items: page, next_cursor: items.length > limit ? (page.at(-1)?.id ?? null) : null };
    },
  );

  for (const [verb, status] of [
    ['acknowledge', 'acknowledged'],
    ['resolve', 'resolved'],
  ] as const) {
    app.post(
      `${base}/incidents/:id/${verb}`,
      {
        config: { auth: 'security:manage' },
        schema: {
          tags,
          summary: `Mark an incident ${status}`,
          params: Closed({ id: Id }),
          response: { 200: IncidentView },
        },
      },
      async (request) => {
        const { id } = request.params as { id: string };
        const incident = await incidents.transition(id, status, request.principal?.userId ?? null);
        await identity.audit.record({
          category: 'security',
          action: `incident.${verb}`,
          actor: actorOf(request.principal),
          target: { type: 'security_incident', id },
          context: requestContext(request),
        });
        return incident;
      },
    );
  }
}
