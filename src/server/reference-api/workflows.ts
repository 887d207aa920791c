import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { WorkflowsTable, WorkflowVersionsTable } from '../../storage/schema.ts';
import { Closed, ErrorResponse, ListQuery, type ListQueryValue, Name, Page } from '../schemas.ts';
import type { Services } from '../services.ts';
import { limitOf, pageOf } from './page-of.ts';
import { recordChange } from './record-change.ts';
import {
  JsonObject,
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
import { serializeDefinition } from './workflow-definition.ts';

const tags = ['workflows'];
const PATH = `${ORGANIZATIONS_PATH}/:org/workflows`;
const Description = Type.String({ maxLength: 4000 });
const errors = { ...TENANT_ERRORS, 413: ErrorResponse };

const Workflow = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  definition: JsonObject,
  version: Type.Integer(),
  created_by: Nullable(Type.String()),
  created_at: Time,
  updated_at: Time,
});
const WorkflowVersion = Type.Object({
  workflow_id: Type.String(),
  version: Type.Integer(),
  name: Type.String(),
  description: Nullable(Type.String()),
  definition: JsonObject,
  created_by: Nullable(Type.String()),
  created_at: Time,
});
const CreateBody = Closed({
  name: Name,
  description: Type.Optional(Nullable(Description)),
  definition: JsonObject,
});
const UpdateBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Nullable(Description)),
    definition: Type.Optional(JsonObject),
  },
  { additionalProperties: false, minProperties: 1 },
);
const VersionsQuery = Closed({
  ...ListQuery.properties,
  cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,8}$', description: 'A version number' })),
});

interface WorkflowBody {
  name?: string;
  description?: string | null;
  definition?: Record<string, unknown>;
}

function view(row: WorkflowsTable) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    definition: JSON.parse(row.definition) as Record<string, unknown>,
    version: Number(row.version),
    created_by: row.created_by,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function versionView(row: WorkflowVersionsTable) {
  return { ...row, version: Number(row.version), definition: JSON.parse(row.definition) as object };
}

/**
 * Workflows with their history: creating one writes version 1; every update, in the same
 * transaction, bumps the version with an UPDATE … RETURNING (which takes the row's write lock, so
 * concurrent updates queue and each gets the next number) and writes that version's row.
 */
export function registerWorkflowRoutes(app: FastifyInstance, services: Services): void {
  const { db } = services.database;
  const now = () => new Date(services.clock.now()).toISOString();

  const records = tenantTable(db, 'workflows');
  const find = records.find;

  app.get<{ Params: OrgParamsValue; Querystring: ListQueryValue }>(
    PATH,
    {
      config: { auth: 'workflows:read' },
      schema: {
        tags,
        summary: 'Workflows, oldest first',
        params: OrgParams,
        querystring: ListQuery,
        response: { 200: Page(Workflow), ...TENANT_ERRORS },
      },
    },
    async (request) => records.page(request.params.org, request.query, view),
  );

  app.post<{ Params: OrgParamsValue; Body: WorkflowBody & { name: string } }>(
    PATH,
    {
      config: { auth: 'workflows:write' },
      schema: {
        tags,
        summary: 'Create a workflow (version 1)',
        params: OrgParams,
        body: CreateBody,
        response: { 201: Workflow, ...errors },
      },
    },
    async (request, reply) => {
      const { org } = request.params;
      const body = request.body;
      const definition = serializeDefinition(body.definition ?? {});
      const at = now();
      const row: WorkflowsTable = {
        id: newId(services.clock.now()),
        org_id: org,
        name: body.name,
        description: body.description ?? null,
        definition,
        version: 1,
        created_by: request.principal!.id,
        created_at: at,
        updated_at: at,
      };
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('workflows').values(row).execute();
        await trx.insertInto('workflow_versions').values(versionOf(row)).execute();
      });
      await recordChange(services, request, {
        action: 'workflow.create',
        orgId: org,
        target: { type: 'workflow', id: row.id },
        details: { version: 1 },
      });
      return reply.code(201).send(view(row));
    },
  );

  app.get<{ Params: OrgRecordParamsValue }>(
    `${PATH}/:id`,
    {
      config: { auth: 'workflows:read' },
      schema: {
        tags,
        summary: 'One workflow (current version)',
        params: OrgRecordParams,
        response: { 200: Workflow, ...TENANT_ERRORS },
      },
    },
    async (request) => view(await find(request.params.org, request.params.id)),
  );

  app.put<{ Params: OrgRecordParamsValue; Body: WorkflowBody }>(
    `${PATH}/:id`,
    {
      config: { auth: 'workflows:write' },
      schema: {
        tags,
        summary: 'Change a workflow; always saves a new version',
        params: OrgRecordParams,
        body: UpdateBody,
        response: { 200: Workflow, ...errors },
      },
    },
    async (request) => {
      const { org, id } = request.params;
      const body = request.body;
      const definition = body.definition === undefined ? undefined : serializeDefinition(body.definition);
      const actor = request.principal!.id;
      const row = await db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('workflows')
          .set((eb) => ({
            version: eb('version', '+', 1),
            updated_at: now(),
            ...(body.name !== undefined ? { name: body.name } : {}),
            ...(body.description !== undefined ? { description: body.description } : {}),
            ...(definition !== undefined ? { definition } : {}),
          }))
          .where('org_id', '=', org)
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirst();
        if (!updated) throw new BastionError(HttpErrors.notFound);
        await trx
          .insertInto('workflow_versions')
          .values({ ...versionOf(updated), created_by: actor, created_at: updated.updated_at })
          .execute();
        return updated;
      });
      await recordChange(services, request, {
        action: 'workflow.update',
        orgId: org,
        target: { type: 'workflow', id },
        details: { version: Number(row.version), fields: Object.keys(body) },
      });
      return view(row);
    },
  );

  app.delete<{ Params: OrgRecordParamsValue }>(
    `${PATH}/:id`,
    {
      config: { auth: 'workflows:delete' },
      schema: {
        tags,
        summary: 'Delete a workflow and its versions',
        params: OrgRecordParams,
        response: { 204: NoContent, ...TENANT_ERRORS },
      },
    },
    async (request, reply) => {
      const { org, id } = request.params;
      const deleted = await db
        .deleteFrom('workflows')
        .where('org_id', '=', org)
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw new BastionError(HttpErrors.notFound);
      await recordChange(services, request, {
        action: 'workflow.delete',
        orgId: org,
        target: { type: 'workflow', id },
      });
      return reply.code(204).send();
    },
  );

  app.get<{ Params: OrgRecordParamsValue; Querystring: ListQueryValue }>(
    `${PATH}/:id/versions`,
    {
      config: { auth: 'workflows:read' },
      schema: {
        tags,
        summary: "A workflow's versions, newest first",
        params: OrgRecordParams,
        querystring: VersionsQuery,
        response: { 200: Page(WorkflowVersion), ...TENANT_ERRORS },
      },
    },
    async (request) => {
      const { org, id } = request.params;
      await find(org, id);
      const limit = limitOf(request.query);
      let select = db
        .selectFrom('workflow_versions')
        .selectAll()
        .where(
          'workflow_id',
          'in',
          db.selectFrom('workflows').select('id').where('org_id', '=', org).where('id', '=', id),
        );
      if (request.query.cursor) select = select.where('version', '<', Number(request.query.cursor));
      const rows = await select
        .orderBy('version', 'desc')
        .limit(limit + 1)
        .execute();
      return pageOf(rows, limit, (row) => String(row.version), versionView);
    },
  );
}

function versionOf(row: WorkflowsTable): WorkflowVersionsTable {
  return {
    workflow_id: row.id,
    version: row.version,
    name: row.name,
    description: row.description,
    definition: row.definition,
    created_by: row.created_by,
    created_at: row.created_at,
  };
}
