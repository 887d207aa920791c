import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import { PERMISSIONS } from '../../identity/permissions.ts';
import { Closed, Id, ListQuery, type ListQueryValue, Name, Page } from '../schemas.ts';
import type { Services } from '../services.ts';
import { limitOf } from './page-of.ts';
import { recordChange } from './record-change.ts';
import {
  NoContent,
  Nullable,
  ORGANIZATIONS_PATH,
  OrgParams,
  type OrgParamsValue,
  type OrgRecordParamsValue,
  TENANT_ERRORS,
  Time,
} from './schemas.ts';

const tags = ['api-keys'];
const PATH = `${ORGANIZATIONS_PATH}/:org/api-keys`;

const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  permissions: Type.Array(Type.String()),
  prefix: Type.String(),
  created_by: Nullable(Type.String()),
  created_at: Time,
  expires_at: Nullable(Time),
  last_used_at: Nullable(Time),
  revoked_at: Nullable(Time),
});
const NewApiKey = Type.Object({
  ...ApiKey.properties,
  token: Type.String({ description: 'The whole key (bst_…); shown this once' }),
});
const KeyParams = Closed({
  org: Id,
  id: Type.String({ pattern: '^[0-9a-f]{16}$', description: 'API key id (its public part)' }),
});
const CreateBody = Closed({
  name: Name,
  permissions: Type.Array(Type.String({ pattern: '^[a-z][a-z-]*:[a-z][a-z-]*$', maxLength: 64 }), {
    minItems: 1,
    maxItems: PERMISSIONS.length,
    uniqueItems: true,
  }),
  expires_at: Type.Optional(Nullable(Type.String({ format: 'date-time' }))),
});

/** The permission that lets a person revoke keys other people made. */
const REVOKE_OTHERS = 'members:manage';

/**
 * API keys of an organization: list, create (the token is shown once; a key holds only
 * permissions its creator holds here) and revoke. Keys are created and revoked by people, never
 * by another key. A person revokes the keys they made; revoking someone else's needs
 * `members:manage` (admins and owners). Revocation reaches every instance at once.
 */
export function registerApiKeyRoutes(app: FastifyInstance, services: Services): void {
  const { apiKeys } = services.identity;
  const { db } = services.database;

  app.get<{ Params: OrgParamsValue; Querystring: ListQueryValue }>(
    PATH,
    {
      config: { auth: 'apikeys:manage' },
      schema: {
        tags,
        summary: 'API keys, newest first (revoked ones included, never their secrets)',
        params: OrgParams,
        querystring: ListQuery,
        response: { 200: Page(ApiKey), ...TENANT_ERRORS },
      },
    },
    async (request) =>
      apiKeys.list(request.params.org, { limit: limitOf(request.query), cursor: request.query.cursor }),
  );

  app.post<{
    Params: OrgParamsValue;
    Body: { name: string; permissions: string[]; expires_at?: string | null };
  }>(
    PATH,
    {
      config: { auth: 'apikeys:manage' },
      schema: {
        tags,
        summary: 'Create an API key with a subset of your permissions; the token is shown once',
        params: OrgParams,
        body: CreateBody,
        response: { 201: NewApiKey, ...TENANT_ERRORS },
      },
    },
    async (request, reply) => {
      const { org } = request.params;
      const body = request.body;
      const principal = request.principal!;
      // A key that could mint keys would outlive its own revocation (and its creator's role).
      if (principal.kind !== 'user') {
        throw new BastionError(HttpErrors.forbidden, { message: 'API keys are created by people' });
      }
      const { key, token } = await apiKeys.create({
        orgId: org,
        name: body.name,
        permissions: body.permissions,
        expiresAt: body.expires_at ?? null,
        createdBy: principal.id,
        granted: request.granted!,
      });
      await recordChange(services, request, {
        action: 'api_key.create',
        orgId: org,
        target: { type: 'api_key', id: key.id },
        details: { permissions: key.permissions, expires_at: key.expires_at },
      });
      return reply.code(201).send({ ...key, token });
    },
  );

  app.delete<{ Params: OrgRecordParamsValue }>(
    `${PATH}/:id`,
    {
      config: { auth: 'apikeys:manage' },
      schema: {
        tags,
        summary: "Revoke an API key: your own, or anyone's with members:manage (people only, not keys)",
        params: KeyParams,
        response: { 204: NoContent, ...TENANT_ERRORS },
      },
    },
    async (request, reply) => {
      const { org, id } = request.params;
      const principal = request.principal!;
      // Looked up first: a key of another organization is not found, whoever asks.
      const key = await db
        .selectFrom('api_keys')
        .select('created_by')
        .where('org_id', '=', org)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!key) throw new BastionError(HttpErrors.notFound);
      if (principal.kind !== 'user') {
        throw new BastionError(HttpErrors.forbidden, { message: 'API keys are revoked by people' });
      }
      if (key.created_by !== principal.id && !request.granted!.has(REVOKE_OTHERS)) {
        throw new BastionError(HttpErrors.forbidden, {
          message: `Revoking a key someone else made needs ${REVOKE_OTHERS}`,
        });
      }
      const revoked = await apiKeys.revoke(org, id);
      if (!revoked) throw new BastionError(HttpErrors.notFound);
      await recordChange(services, request, {
        action: 'api_key.revoke',
        orgId: org,
        target: { type: 'api_key', id },
      });
      return reply.code(204).send();
    },
  );
}
