import type { FastifyInstance } from 'fastify';
import { AuditEvent, AuditQuery, type AuditQueryValue, Page } from '../schemas.ts';
import type { Services } from '../services.ts';
import { limitOf } from './page-of.ts';
import { ORGANIZATIONS_PATH, OrgParams, type OrgParamsValue, TENANT_ERRORS } from './schemas.ts';

/** The organization's audit trail, newest first, optionally of one action (`audit:read`). */
export function registerAuditEventRoutes(app: FastifyInstance, services: Services): void {
  app.get<{ Params: OrgParamsValue; Querystring: AuditQueryValue }>(
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
