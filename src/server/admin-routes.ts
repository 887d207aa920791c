import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../core/errors.ts';
import { actorOf, requestContext } from '../identity/audit-log.ts';
import { IdentityErrors } from '../identity/errors.ts';
import {
  AuditEvent,
  AuditQuery,
  type AuditQueryValue,
  Closed,
  DEFAULT_LIMIT,
  Id,
  ListQuery,
  type ListQueryValue,
  Name,
  Page,
} from './schemas.ts';
import type { Services } from './services.ts';

const UserParams = Closed({ id: Id });
const SessionParams = Closed({ id: Id, sessionId: Id });

/**
 * Platform administration of users (`users:manage`) and their sessions (`sessions:manage`):
 * held by the platform admin only, since these routes are not about one organization.
 */
export function registerAdminRoutes(app: FastifyInstance, services: Services): void {
  const { identity } = services;
  const tags = ['admin'];

  app.get(
    '/api/v1/admin/users',
    { config: { auth: 'users:manage' }, schema: { tags, summary: 'List users', querystring: ListQuery } },
    async (request) => {
      const query = request.query as ListQueryValue;
      return identity.users.list({ limit: query.limit ?? DEFAULT_LIMIT, cursor: query.cursor });
    },
  );

  app.post(
    '/api/v1/admin/users',
    {
      config: { auth: 'users:manage' },
      schema: {
        tags,
        summary: 'Create a user',
        body: Closed({
          email: Type.String({ minLength: 1, maxLength: 320 }),
          password: Type.String({ minLength: 1, maxLength: 4096 }),
          name: Type.Optional(Type.Union([Name, Type.Null()])),
          platform_admin: Type.Optional(Type.Boolean()),
        }),
      },
    },
    async (request, reply) => {
      const body = request.body as {
        email: string;
        password: string;
        name?: string | null;
        platform_admin?: boolean;
      };
      const user = await identity.users.create({
        email: body.email,
        password: body.password,
        name: body.name ?? null,
        platformAdmin: body.platform_admin ?? false,
      });
      await identity.audit.record({
        category: 'change',
        action: 'user.create',
        actor: actorOf(request.principal),
        target: { type: 'user', id: user.id },
        details: { platform_admin: user.platform_admin },
        context: requestContext(request),
      });
      return reply.code(201).send(user);
    },
  );

  app.put(
    '/api/v1/admin/users/:id',
    {
      config: { auth: 'users:manage' },
      schema: {
        tags,
        summary: 'Change a user (name, status, platform admin)',
        params: UserParams,
        body: Closed({
          name: Type.Optional(Type.Union([Name, Type.Null()])),
          status: Type.Optional(Type.Enum(['active', 'disabled'])),
          platform_admin: Type.Optional(Type.Boolean()),
        }),
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const body = request.body as {
        name?: string | null;
        status?: 'active' | 'disabled';
        platform_admin?: boolean;
      };
      if (id === request.principal?.id && (body.status === 'disabled' || body.platform_admin === false)) {
        throw new BastionError(HttpErrors.conflict, {
          message: 'You cannot disable yourself or drop your own platform admin flag',
        });
      }
      await identity.users.update(id, { name: body.name, platformAdmin: body.platform_admin });
      if (body.status !== undefined) await identity.setUserStatus(id, body.status);
      identity.userChanged(id);
      await identity.audit.record({
        category: 'change',
        action: 'user.update',
        actor: actorOf(request.principal),
        target: { type: 'user', id },
        details: { fields: Object.keys(body) },
        context: requestContext(request),
      });
      const row = await identity.users.get(id);
      if (!row) throw new BastionError(IdentityErrors.userNotFound);
      return identity.users.view(row);
    },
  );

  app.delete(
    '/api/v1/admin/users/:id',
    { config: { auth: 'users:manage' }, schema: { tags, summary: 'Delete a user', params: UserParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (id === request.principal?.id) {
        throw new BastionError(HttpErrors.conflict, { message: 'You cannot delete yourself' });
      }
      if (!(await identity.users.get(id))) throw new BastionError(IdentityErrors.userNotFound);
      await identity.sessions.revokeAllForUser(id, 'user_deleted');
      const revokedKeys = await identity.apiKeys.revokeCreatedBy(id);
      await identity.users.delete(id);
      identity.userChanged(id);
      await identity.memberships.changed();
      await identity.audit.record({
        category: 'change',
        action: 'user.delete',
        actor: actorOf(request.principal),
        target: { type: 'user', id },
        details: { revoked_api_keys: revokedKeys },
        context: requestContext(request),
      });
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/admin/audit-events',
    {
      config: { auth: 'audit:read' },
      schema: {
        tags,
        summary: 'Every audit event (all organizations and accounts), newest first',
        querystring: AuditQuery,
        response: { 200: Page(AuditEvent) },
      },
    },
    async (request) => {
      const query = request.query as AuditQueryValue;
      return identity.audit.list({
        limit: query.limit ?? DEFAULT_LIMIT,
        cursor: query.cursor,
        action: query.action,
      });
    },
  );

  app.get(
    '/api/v1/admin/users/:id/sessions',
    {
      config: { auth: 'sessions:manage' },
      schema: { tags, summary: "A user's live sessions", params: UserParams },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      if (!(await identity.users.get(id))) throw new BastionError(IdentityErrors.userNotFound);
      return { items: await identity.sessions.list(id) };
    },
  );

  app.delete(
    '/api/v1/admin/users/:id/sessions/:sessionId',
    {
      config: { auth: 'sessions:manage' },
      schema: { tags, summary: "End a user's session", params: SessionParams },
    },
    async (request, reply) => {
      const { id, sessionId } = request.params as { id: string; sessionId: string };
      if (!(await identity.sessions.find(id, sessionId))) throw new BastionError(HttpErrors.notFound);
      await identity.sessions.revoke(sessionId, 'admin');
      await identity.audit.record({
        category: 'authentication',
        action: 'auth.session_revoked',
        actor: actorOf(request.principal),
        target: { type: 'session', id: sessionId },
        details: { user_id: id },
        context: requestContext(request),
      });
      return reply.code(204).send();
    },
  );
}
