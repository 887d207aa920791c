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
import { type GrantAuthority, permissionsOfRole, roleGrantProblem } from './role-grants.ts';
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

const peopleOnly = () =>
  new BastionError(HttpErrors.forbidden, { message: 'Members are managed by people, not API keys' });

/** Throws 403 when `authority` may not deal in `role` (see {@link roleGrantProblem}). */
function mayDealIn(authority: GrantAuthority, role: string): void {
  const problem = roleGrantProblem(authority, role);
  if (problem !== null) throw new BastionError(HttpErrors.forbidden, { message: problem });
}

/**
 * Members of an organization: list, add an existing user by e-mail, change a role, remove.
 * Membership is managed by people: an API key, whatever its scope, adds, changes and removes
 * nobody. A person grants, changes (from and to) or removes only roles whose every permission they
 * hold themselves, and only an owner (or the platform admin) touches the owner role; the last owner
 * stays. A member who is removed, or whose new role no longer covers one of their API keys, loses
 * those keys: a key never does more than the person who made it.
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

  /**
   * What the caller holds in the organization, read inside `trx` (after the lock): their role now,
   * never more than the permissions the request was let in with. 403 for an API key.
   */
  const authorityOf = async (
    request: FastifyRequest,
    trx: Transaction<DatabaseSchema>,
    orgId: string,
  ): Promise<GrantAuthority> => {
    const principal = request.principal!;
    if (principal.kind !== 'user') throw peopleOnly();
    const granted = request.granted ?? new Set<string>();
    if (principal.platformAdmin) return { permissions: granted, owner: true };
    const role = await roleIn(trx, orgId, principal.id);
    const held = role === null ? new Set<string>() : permissionsOfRole(role);
    return {
      permissions: new Set([...granted].filter((permission) => held.has(permission))),
      owner: role === 'owner',
    };
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
      // Before the address is looked up: a key learns nothing about which users exist.
      if (request.principal!.kind !== 'user') throw peopleOnly();
      const user = await identity.users.findByEmail(request.body.email);
      // The same answer for an unknown address whatever the reason: nothing about users leaks.
      if (!user)
        throw new BastionError(HttpErrors.notFound, { message: 'No user can be added with this address' });
      const at = new Date(services.clock.now()).toISOString();
      await db.transaction().execute(async (trx) => {
        await lock(trx, org);
        mayDealIn(await authorityOf(request, trx, org), role);
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
        const authority = await authorityOf(request, trx, org);
        mayDealIn(authority, current);
        mayDealIn(authority, role);
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
        mayDealIn(await authorityOf(request, trx, org), current);
        if (current === 'owner' && (await ownerCount(trx, org)) <= 1) {
          throw new BastionError(IdentityErrors.lastOwner);
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
