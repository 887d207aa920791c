import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { OrganizationsTable } from '../../storage/schema.ts';
import { Closed, ListQuery, type ListQueryValue, Name, Page } from '../schemas.ts';
import type { Services } from '../services.ts';
import { limitOf, pageOf } from './page-of.ts';
import { recordChange } from './record-change.ts';
import {
  NoContent,
  Nullable,
  ORGANIZATIONS_PATH,
  OrgParams,
  type OrgParamsValue,
  TENANT_ERRORS,
  Time,
} from './schemas.ts';

const tags = ['organizations'];

const Organization = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Nullable(Type.String({ description: "The caller's role; null for API keys and non-member admins" })),
  created_by: Nullable(Type.String()),
  created_at: Time,
  updated_at: Time,
});

const OrganizationBody = Closed({ name: Name });

type OrganizationRow = OrganizationsTable & { role: string | null };

function view(row: OrganizationRow) {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    created_by: row.created_by,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/**
 * Organizations: list (the caller's own; all for the platform admin; an API key's one), create
 * (the creator becomes owner), read, rename, and delete with everything in it.
 */
export function registerOrganizationRoutes(app: FastifyInstance, services: Services): void {
  const { db } = services.database;
  const { identity, vault } = services;

  /** The organization with the caller's role in it, or null. */
  const find = (request: FastifyRequest, orgId: string): Promise<OrganizationRow | undefined> => {
    const principal = request.principal!;
    const userId = principal.kind === 'user' ? principal.id : '';
    return db
      .selectFrom('organizations')
      .leftJoin('memberships', (join) =>
        join.onRef('memberships.org_id', '=', 'organizations.id').on('memberships.user_id', '=', userId),
      )
      .selectAll('organizations')
      .select('memberships.role')
      .where('organizations.id', '=', orgId)
      .executeTakeFirst();
  };

  app.get(
    ORGANIZATIONS_PATH,
    {
      config: { auth: 'authenticated' },
      schema: {
        tags,
        summary: 'Organizations the caller belongs to (all of them for the platform admin)',
        querystring: ListQuery,
        response: { 200: Page(Organization), ...TENANT_ERRORS },
      },
    },
    async (request) => {
      const query = request.query as ListQueryValue;
      const limit = limitOf(query);
      const principal = request.principal!;
      const userId = principal.kind === 'user' ? principal.id : '';
      let select = db
        .selectFrom('organizations')
        .leftJoin('memberships', (join) =>
          join.onRef('memberships.org_id', '=', 'organizations.id').on('memberships.user_id', '=', userId),
        )
        .selectAll('organizations')
        .select('memberships.role');
      if (principal.kind === 'api_key') {
        select = select.where('organizations.id', '=', principal.orgId ?? '');
      } else if (!principal.platformAdmin) {
        select = select.where('memberships.user_id', '=', userId);
      }
      if (query.cursor) select = select.where('organizations.id', '>', query.cursor);
      const rows = await select
        .orderBy('organizations.id')
        .limit(limit + 1)
        .execute();
      return pageOf(rows, limit, (row) => row.id, view);
    },
  );

  app.post(
    ORGANIZATIONS_PATH,
    {
      config: { auth: 'authenticated' },
      schema: {
        tags,
        summary: 'Create an organization; the caller becomes its owner (users only)',
        body: OrganizationBody,
        response: { 201: Organization, ...TENANT_ERRORS },
      },
    },
    async (request, reply) => {
      const principal = request.principal!;
      if (principal.kind !== 'user') {
        throw new BastionError(HttpErrors.forbidden, {
          message: 'Organizations are created by users, not API keys',
        });
      }
      const { name } = request.body as { name: string };
      const now = services.clock.now();
      const at = new Date(now).toISOString();
      const row: OrganizationsTable = {
        id: newId(now),
        name,
        created_by: principal.id,
        created_at: at,
        updated_at: at,
      };
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('organizations').values(row).execute();
        await trx
          .insertInto('memberships')
          .values({ org_id: row.id, user_id: principal.id, role: 'owner', created_at: at, updated_at: at })
          .execute();
      });
      await identity.memberships.changed();
      await recordChange(services, request, {
        action: 'organization.create',
        orgId: row.id,
        target: { type: 'organization', id: row.id },
      });
      return reply.code(201).send(view({ ...row, role: 'owner' }));
    },
  );

  app.get<{ Params: OrgParamsValue }>(
    `${ORGANIZATIONS_PATH}/:org`,
    {
      config: { auth: 'org:read' },
      schema: {
        tags,
        summary: 'One organization',
        params: OrgParams,
        response: { 200: Organization, ...TENANT_ERRORS },
      },
    },
    async (request) => {
      const row = await find(request, request.params.org);
      if (!row) throw new BastionError(HttpErrors.notFound);
      return view(row);
    },
  );

  app.put<{ Params: OrgParamsValue; Body: { name: string } }>(
    `${ORGANIZATIONS_PATH}/:org`,
    {
      config: { auth: 'org:update' },
      schema: {
        tags,
        summary: 'Rename an organization',
        params: OrgParams,
        body: OrganizationBody,
        response: { 200: Organization, ...TENANT_ERRORS },
      },
    },
    async (request) => {
      const { org } = request.params;
      const result = await db
        .updateTable('organizations')
        .set({ name: request.body.name, updated_at: new Date(services.clock.now()).toISOString() })
        .where('id', '=', org)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw new BastionError(HttpErrors.notFound);
      // Cached roles do not hold the name, but every organization change is announced alike.
      await identity.memberships.changed();
      await recordChange(services, request, {
        action: 'organization.update',
        orgId: org,
        target: { type: 'organization', id: org },
        details: { fields: ['name'] },
      });
      const row = await find(request, org);
      if (!row) throw new BastionError(HttpErrors.notFound);
      return view(row);
    },
  );

  app.delete<{ Params: OrgParamsValue }>(
    `${ORGANIZATIONS_PATH}/:org`,
    {
      config: { auth: 'org:delete' },
      schema: {
        tags,
        summary:
          'Delete an organization with its members, workflows, integrations (and their secrets) and keys',
        params: OrgParams,
        response: { 204: NoContent, ...TENANT_ERRORS },
      },
    },
    async (request, reply) => {
      const { org } = request.params;
      // Keys first, through the service: every instance forgets them at once, instead of honouring
      // a cached key of a deleted organization until its cache entry expires.
      const keys = await db.selectFrom('api_keys').select('id').where('org_id', '=', org).execute();
      for (const key of keys) await identity.apiKeys.revoke(org, key.id);
      const secrets = await db.transaction().execute(async (trx) => {
        const integrations = await trx
          .selectFrom('integrations')
          .select('secret_name')
          .where('org_id', '=', org)
          .execute();
        // Members, keys, workflows (and their versions) and integrations go by the foreign keys'
        // ON DELETE CASCADE; the audit trail stays.
        const deleted = await trx.deleteFrom('organizations').where('id', '=', org).executeTakeFirst();
        if (Number(deleted.numDeletedRows) === 0) throw new BastionError(HttpErrors.notFound);
        return integrations.map((row) => row.secret_name);
      });
      // After the rows: a failure here leaves an unreachable encrypted secret, never an
      // integration without its credentials.
      for (const name of secrets) {
        await vault.delete(name).catch((error: unknown) => {
          request.log.warn(
            { err: error, secret: name },
            'could not delete the secret of a deleted integration',
          );
        });
      }
      await identity.memberships.changed();
      await recordChange(services, request, {
        action: 'organization.delete',
        orgId: org,
        target: { type: 'organization', id: org },
        details: { integrations: secrets.length, api_keys: keys.length },
      });
      return reply.code(204).send();
    },
  );
}
