import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Closed, ListQuery, type ListQueryValue, Page } from '../schemas.ts';
import type { Services } from '../services.ts';
import { limitOf } from './page-of.ts';
import {
  Nullable,
  ORGANIZATIONS_PATH,
  OrgParams,
  type OrgParamsValue,
  TENANT_ERRORS,
  Time,
} from './schemas.ts';

const AuditQuery = Closed({
  ...ListQuery.properties,
  action: Type.Optional(
    Type.String({ pattern: '^[a-z][a-z0-9_.]{0,63}$', description: 'e.g. workflow.update' }),
  ),
});
const Reference = Type.Object({ type: Type.String(), id: Nullable(Type.String()) });
const AuditEvent = Type.Object({
  id: Type.String(),
  org_id: Nullable(Type.String()),
  category: Type.String(),
  action: Type.String(),
  outcome: Type.String(),
  actor: Reference,
  target: Nullable(Reference),
  ip: Nullable(Type.String()),
  user_agent: Nullable(Type.String()),
  request_id: Nullable(Type.String()),
  details: Type.Object({}, { additionalProperties: true }),
  created_at: Time,
});

/** The organization's audit trail, newest first, optionally of one action (`audit:read`). */
export function registerAuditEventRoutes(app: FastifyInstance, services: Services): void {
  app.get<{ Params: OrgParamsValue; Querystring: ListQueryValue & { action?: string } }>(
    `${ORGANIZATIONS_PATH}/:org/audit-events`,
    {
      config: { auth: 'audit:read' },
      schema: {
        tags: ['audit'],
        summary: "The organization's audit events, newest first",
        params: OrgParams,
        querystring: AuditQuery,
        response: { 200: Page(AuditEvent), ...TENANT_ERRORS },
      },
    },
    async (request) =>
      services.identity.audit.listForOrganization(request.params.org, {
        limit: limitOf(request.query),
        cursor: request.query.cursor ?? null,
        action: request.query.action ?? null,
      }),
  );
}
