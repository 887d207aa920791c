import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { IntegrationsTable } from '../../storage/schema.ts';
import { Closed, ErrorResponse, ListQuery, type ListQueryValue, Name, Page } from '../schemas.ts';
import type { Services } from '../services.ts';
import {
  Credentials,
  checkIntegrationUrl,
  type IntegrationCredentials,
  serializeCredentials,
} from './integration-credentials.ts';
import { recordChange } from './record-change.ts';
import {
  NoContent,
  Nullable,
  ORGANIZATIONS_PATH,
  OrgParams,
  type OrgParamsValue,
  OrgRecordParams,
  type OrgRecordParamsValue,
  TENANT_ERRORS,
  Time,
} from './schemas.ts';
import { tenantTable } from './tenant-table.ts';

const tags = ['integrations'];
const PATH = `${ORGANIZATIONS_PATH}/:org/integrations`;
const errors = { ...TENANT_ERRORS, 413: ErrorResponse };

const IntegrationType = Type.String({ pattern: '^[a-z][a-z0-9_.-]{0,63}$', description: 'e.g. webhook' });
const Url = Type.String({ minLength: 1, maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' });

// The response schema lists every field: nothing else (credentials above all) can be serialized.
const Integration = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  url: Type.String(),
  has_credentials: Type.Boolean(),
  created_by: Nullable(Type.String()),
  created_at: Time,
  updated_at: Time,
  last_test_at: Nullable(Time),
  last_test_status: Nullable(Type.String()),
});
const CreateBody = Closed({ name: Name, type: IntegrationType, url: Url, credentials: Credentials });
const UpdateBody = Type.Object(
  {
    name: Type.Optional(Name),
    type: Type.Optional(IntegrationType),
    url: Type.Optional(Url),
    credentials: Type.Optional(Credentials),
  },
  { additionalProperties: false, minProperties: 1 },
);

interface IntegrationBody {
  name?: string;
  type?: string;
  url?: string;
  credentials?: IntegrationCredentials;
}

function view(row: IntegrationsTable) {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    url: row.url,
    has_credentials: true,
    created_by: row.created_by,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_test_at: row.last_test_at,
    last_test_status: row.last_test_status,
  };
}

/**
 * The integration's URL is checked where it is used — the outbound client refuses private and
 * metadata destinations unless `outbound.allowPrivateNetworks` allows them — and its credentials
 * are secrets Bastion never interprets (a random token may look like anything): attack detection
 * leaves both to those checks.
 */
const INTEGRATION_DETECTION = { exclude: ['body.url', 'body.credentials.*'] };

/**
 * Outbound integrations. Credentials are write-only: they go to the secrets vault as
 * `integrations/<org>/<id>` and only `has_credentials` is ever shown. Moving an integration to
 * another origin needs its credentials again, so write access cannot redirect stored credentials
 * to a host of one's choosing and read them there with a test call.
 */
export function registerIntegrationRoutes(app: FastifyInstance, services: Services): void {
  const { db } = services.database;
  const { vault } = services;
  const now = () => new Date(services.clock.now()).toISOString();

  const records = tenantTable(db, 'integrations');
  const find = records.find;

  app.get<{ Params: OrgParamsValue; Querystring: ListQueryValue }>(
    PATH,
    {
      config: { auth: 'integrations:read' },
      schema: {
        tags,
        summary: 'Integrations, oldest first (never their credentials)',
        params: OrgParams,
        querystring: ListQuery,
        response: { 200: Page(Integration), ...TENANT_ERRORS },
      },
    },
    async (request) => records.page(request.params.org, request.query, view),
  );

  app.post<{ Params: OrgParamsValue; Body: Required<IntegrationBody> }>(
    PATH,
    {
      config: { auth: 'integrations:write', detection: INTEGRATION_DETECTION },
      schema: {
        tags,
        summary: 'Create an integration; its credentials go to the secrets vault',
        params: OrgParams,
        body: CreateBody,
        response: { 201: Integration, ...errors },
      },
    },
    async (request, reply) => {
      const { org } = request.params;
      const body = request.body;
      checkIntegrationUrl(body.url);
      const credentials = serializeCredentials(body.credentials);
      const at = now();
      const id = newId(services.clock.now());
      const row: IntegrationsTable = {
        id,
        org_id: org,
        name: body.name,
        type: body.type,
        url: body.url,
        secret_name: `integrations/${org}/${id}`,
        created_by: request.principal!.id,
        created_at: at,
        updated_at: at,
        last_test_at: null,
        last_test_status: null,
      };
      await vault.set(row.secret_name, credentials);
      try {
        await db.insertInto('integrations').values(row).execute();
      } catch (error) {
        await vault.delete(row.secret_name).catch(() => {});
        throw error;
      }
      await recordChange(services, request, {
        action: 'integration.create',
        orgId: org,
        target: { type: 'integration', id },
        details: { type: body.type },
      });
      return reply.code(201).send(view(row));
    },
  );

  app.get<{ Params: OrgRecordParamsValue }>(
    `${PATH}/:id`,
    {
      config: { auth: 'integrations:read' },
      schema: {
        tags,
        summary: 'One integration (never its credentials)',
        params: OrgRecordParams,
        response: { 200: Integration, ...TENANT_ERRORS },
      },
    },
    async (request) => view(await find(request.params.org, request.params.id)),
  );

  app.put<{ Params: OrgRecordParamsValue; Body: IntegrationBody }>(
    `${PATH}/:id`,
    {
      config: { auth: 'integrations:write', detection: INTEGRATION_DETECTION },
      schema: {
        tags,
        summary: 'Change an integration; new credentials replace the old ones (a new vault version)',
        params: OrgRecordParams,
        body: UpdateBody,
        response: { 200: Integration, ...errors },
      },
    },
    async (request) => {
      const { org, id } = request.params;
      const body = request.body;
      const row = await find(org, id);
      if (body.url !== undefined) {
        const origin = checkIntegrationUrl(body.url).origin;
        if (body.credentials === undefined && origin !== new URL(row.url).origin) {
          throw new BastionError(HttpErrors.validation, {
            message: 'Moving an integration to another origin needs its credentials again',
          });
        }
      }
      if (body.credentials !== undefined) {
        await vault.rotate(row.secret_name, serializeCredentials(body.credentials));
      }
      const updated = await db
        .updateTable('integrations')
        .set({
          updated_at: now(),
          ...(body.name !== undefined ? { name: body.name } : {}),
          ...(body.type !== undefined ? { type: body.type } : {}),
          ...(body.url !== undefined ? { url: body.url } : {}),
        })
        .where('org_id', '=', org)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      if (!updated) throw new BastionError(HttpErrors.notFound);
      await recordChange(services, request, {
        action: 'integration.update',
        orgId: org,
        target: { type: 'integration', id },
        details: { fields: Object.keys(body) },
      });
      return view(updated);
    },
  );

  app.delete<{ Params: OrgRecordParamsValue }>(
    `${PATH}/:id`,
    {
      config: { auth: 'integrations:delete' },
      schema: {
        tags,
        summary: 'Delete an integration and its credentials',
        params: OrgRecordParams,
        response: { 204: NoContent, ...TENANT_ERRORS },
      },
    },
    async (request, reply) => {
      const { org, id } = request.params;
      const row = await db
        .deleteFrom('integrations')
        .where('org_id', '=', org)
        .where('id', '=', id)
        .returning('secret_name')
        .executeTakeFirst();
      if (!row) throw new BastionError(HttpErrors.notFound);
      await vault.delete(row.secret_name).catch((error: unknown) => {
        request.log.warn({ err: error, secret: row.secret_name }, 'could not delete an integration secret');
      });
      await recordChange(services, request, {
        action: 'integration.delete',
        orgId: org,
        target: { type: 'integration', id },
      });
      return reply.code(204).send();
    },
  );
}
