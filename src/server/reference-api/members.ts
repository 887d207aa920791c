import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';
import { IdentityErrors } from '../../identity/errors.ts';
import { ROLE_PERMISSIONS, ROLES, type Role } from '../../identity/permissions.ts';
import type { DatabaseSchema } from '../../storage/schema.ts';
import { Closed, ErrorResponse, Id, ListQuery, type ListQueryValue, Page } from '../schemas.ts';
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

const tags = ['members'];
const PATH = `${ORGANIZATIONS_PATH}/:org/members`;

const RoleSchema = Type.Enum([...ROLES], { description: 'Organization role' });
const Member = Type.Object({
  user_id: Type.String(),
  email: Type.String(),
  name: Nullable(Type.String()),
  role: Type.String(),
  created_at: Time,
});
const MemberParams = Closed({ org: Id, userId: Id });
const errors = { ...TENANT_ERRORS, 409: ErrorResponse };

interface MemberRow {
  id: string;
  email: string;
  name: string | null;
  role: string;
  created_at: string;
}

interface MemberParamsValue {
  org: string;
  userId: string;
}

const ownerOnly = () =>
  new BastionError(HttpErrors.forbidden, {
    message: 'Only an owner can grant, change or remove the owner role',
  });

/**
 * Members of an organization: list, add an existing user by e-mail, change a role, remove.
 * Only an owner (or the platform admin) touches the owner role, and the last owner stays. A member
 * who is removed, or whose new role no longer covers one of their API keys, loses those keys: a
 * key never does more than the person who made it.
 */
export function registerMemberRoutes(app: FastifyInstance, services: Services): void {
  const { db } = services.database;
  const { identity } = services;
  const postgres = services.database.kind === 'postgres';

  /**
   * Serializes membership changes of one organization, so two owners demoting each other at once
   * cannot leave it without an owner. NO KEY UPDATE does not hold up inserts that merely reference
   * the organization (workflows, keys). SQLite transactions already run one at a time.
   */
  const lock = async (trx: Transaction<DatabaseSchema>, orgId: string) => {
    if (postgres) {
      await trx.selectFrom('organizations').select('id').where('id', '=', orgId).forNoKeyUpdate().execute();
    }
  };

  const toMember = async (row: MemberRow) => ({
    user_id: row.id,
    email: await identity.users.email(row),
    name: row.name,
    role: row.role,
    created_at: row.created_at,
  });

  const memberView = async (orgId: string, userId: string) => {
    const row = await selectMembers(db, orgId).where('users.id', '=', userId).executeTakeFirst();
    if (!row) throw new BastionError(HttpErrors.notFound);
    return toMember(row);
  };

  /** True when the caller is an owner of the organization or the platform admin, read inside `trx`. */
  const callerIsOwner = async (request: FastifyRequest, trx: Transaction<DatabaseSchema>, orgId: string) => {
    const principal = request.principal!;
    if (principal.kind !== 'user') return false;
    if (principal.platformAdmin) return true;
    return (await roleIn(trx, orgId, principal.id)) === 'owner';
  };

  /** Revokes the member's keys in the organization that `allowed` does not cover (all when null). */
  const revokeKeys = async (orgId: string, userId: string, allowed: ReadonlySet<string> | null) => {
    const keys = await db
      .selectFrom('api_keys')
      .select(['id', 'permissions'])
      .where('org_id', '=', orgId)
      .where('created_by', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
    const beyond = keys.filter(
      (key) =>
        allowed === null || (JSON.parse(key.permissions) as string[]).some((name) => !allowed.has(name)),
    );
    for (const key of beyond) await identity.apiKeys.revoke(orgId, key.id);
    return beyond.map((key) => key.id);
  };

  app.get<{ Params: OrgParamsValue; Querystring: ListQueryValue }>(
    PATH,
    {
      config: { auth: 'members:read' },
      schema: {
        tags,
        summary: 'Members and their roles',
        params: OrgParams,
        querystring: ListQuery,
        response: { 200: Page(Member), ...TENANT_ERRORS },
      },
    },
    async (request) => {
      const limit = limitOf(request.query);
      let select = selectMembers(db, request.params.org);
      if (request.query.cursor) select = select.where('users.id', '>', request.query.cursor);
      const rows = await select
        .orderBy('users.id')
        .limit(limit + 1)
        .execute();
      const page = pageOf(rows, limit, (row) => row.id, toMember);
      return { items: await Promise.all(page.items), next_cursor: page.next_cursor };
    },
  );

  app.post<{ Params: OrgParamsValue; Body: { email: string; role: Role } }>(
    PATH,
    {
      config: { auth: 'members:manage' },
      schema: {
        tags,
        summary: 'Add an existing user by e-mail address',
        params: OrgParams,
        body: Closed({ email: Type.String({ minLength: 1, maxLength: 320 }), role: RoleSchema }),
        response: { 201: Member, ...errors },
      },
    },
    async (request, reply) => {
      const { org } = request.params;
      const { role } = request.body;
      const user = await identity.users.findByEmail(request.body.email);
      // The same answer for an unknown address whatever the reason: nothing about users leaks.
      if (!user)
        throw new BastionError(HttpErrors.notFound, { message: 'No user can be added with this address' });
      const at = new Date(services.clock.now()).toISOString();
      await db.transaction().execute(async (trx) => {
        await lock(trx, org);
        if (role === 'owner' && !(await callerIsOwner(request, trx, org))) throw ownerOnly();
        const inserted = await trx
          .insertInto('memberships')
          .values({ org_id: org, user_id: user.id, role, created_at: at, updated_at: at })
          .onConflict((conflict) => conflict.columns(['org_id', 'user_id']).doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
          throw new BastionError(HttpErrors.conflict, { message: 'This user is already a member' });
        }
      });
      await identity.memberships.changed();
      await recordChange(services, request, {
        action: 'member.add',
        orgId: org,
        target: { type: 'user', id: user.id },
        details: { role },
      });
      return reply.code(201).send(await memberView(org, user.id));
    },
  );

  app.put<{ Params: MemberParamsValue; Body: { role: Role } }>(
    `${PATH}/:userId`,
    {
      config: { auth: 'members:manage' },
      schema: {
        tags,
        summary: "Change a member's role",
        params: MemberParams,
        body: Closed({ role: RoleSchema }),
        response: { 200: Member, ...errors },
      },
    },
    async (request) => {
      const { org, userId } = request.params;
      const { role } = request.body;
      const previous = await db.transaction().execute(async (trx) => {
        await lock(trx, org);
        const current = await roleIn(trx, org, userId);
        if (current === null) throw new BastionError(HttpErrors.notFound);
        if ((current === 'owner' || role === 'owner') && !(await callerIsOwner(request, trx, org))) {
          throw ownerOnly();
        }
        if (current === 'owner' && role !== 'owner' && (await ownerCount(trx, org)) <= 1) {
          throw new BastionError(IdentityErrors.lastOwner);
        }
        await trx
          .updateTable('memberships')
          .set({ role, updated_at: new Date(services.clock.now()).toISOString() })
          .where('org_id', '=', org)
          .where('user_id', '=', userId)
          .execute();
        return current;
      });
      await identity.memberships.changed();
      const revoked = await revokeKeys(org, userId, ROLE_PERMISSIONS[role]);
      await recordChange(services, request, {
        action: 'member.update',
        orgId: org,
        target: { type: 'user', id: userId },
        details: { from: previous, to: role, revoked_api_keys: revoked },
      });
      return memberView(org, userId);
    },
  );

  app.delete<{ Params: MemberParamsValue }>(
    `${PATH}/:userId`,
    {
      config: { auth: 'members:manage' },
      schema: {
        tags,
        summary: 'Remove a member (and the API keys they made here)',
        params: MemberParams,
        response: { 204: NoContent, ...errors },
      },
    },
    async (request, reply) => {
      const { org, userId } = request.params;
      const previous = await db.transaction().execute(async (trx) => {
        await lock(trx, org);
        const current = await roleIn(trx, org, userId);
        if (current === null) throw new BastionError(HttpErrors.notFound);
        if (current === 'owner') {
          if (!(await callerIsOwner(request, trx, org))) throw ownerOnly();
          if ((await ownerCount(trx, org)) <= 1) throw new BastionError(IdentityErrors.lastOwner);
        }
        await trx.deleteFrom('memberships').where('org_id', '=', org).where('user_id', '=', userId).execute();
        return current;
      });
      await identity.memberships.changed();
      const revoked = await revokeKeys(org, userId, null);
      await recordChange(services, request, {
        action: 'member.remove',
        orgId: org,
        target: { type: 'user', id: userId },
        details: { role: previous, revoked_api_keys: revoked },
      });
      return reply.code(204).send();
    },
  );
}

function selectMembers(db: Kysely<DatabaseSchema>, orgId: string) {
  return db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select(['users.id', 'users.email', 'users.name', 'memberships.role', 'memberships.created_at'])
    .where('memberships.org_id', '=', orgId);
}

async function roleIn(db: Kysely<DatabaseSchema>, orgId: string, userId: string): Promise<string | null> {
  const row = await db
    .selectFrom('memberships')
    .select('role')
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row?.role ?? null;
}

async function ownerCount(db: Kysely<DatabaseSchema>, orgId: string): Promise<number> {
  const row = await db
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<string | number>().as('owners'))
    .where('org_id', '=', orgId)
    .where('role', '=', 'owner')
    .executeTakeFirstOrThrow();
  return Number(row.owners);
}
