import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES as ALL_ROLES, PERMISSIONS, ROLE_PERMISSIONS } from '../src/identity/permissions.ts';
import { roleGrantProblem } from '../src/server/reference-api/role-grants.ts';
import type { TestApp, TestAppOptions } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { postgresAvailable, REDIS_URL_TEST, redisAvailable, uniqueName } from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const ORGS = '/api/v1/organizations';
const ROLES = ['admin', 'developer', 'viewer', 'auditor'] as const;
type Who = 'platform' | 'owner' | 'outsider' | (typeof ROLES)[number];

function rbacSuite(name: string, options: TestAppOptions, skip = false): void {
  describe.skipIf(skip)(name, () => {
    let t: TestApp;
    let org: string;
    const tokens = {} as Record<Who, string>;
    const ids = {} as Record<Who, string>;
    const as = (who: Who, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
      call(t.app, tokens[who], method, url, payload);
    const status = async (
      who: Who,
      method: 'GET' | 'POST' | 'PUT' | 'DELETE',
      url: string,
      payload?: unknown,
    ) => (await as(who, method, url, payload)).statusCode;
    const member = (userId: string) => `${ORGS}/${org}/members/${userId}`;

    beforeAll(async () => {
      t = await startIdentityApp({
        ...options,
        configure: (config) => {
          config.loadShedding.enabled = false;
          config.redis.keyPrefix = `${uniqueName('ref')}:`;
        },
      });
      tokens.platform = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
      for (const who of ['owner', 'outsider', ...ROLES] as const) {
        ids[who] = await createUser(t.app, tokens.platform, `${who}@rbac.test`);
        tokens[who] = (await login(t.app, `${who}@rbac.test`, STRONG_PASSWORD)).access_token;
      }
      org = (await as('owner', 'POST', ORGS, { name: 'Roles' })).json().id;
      for (const role of ROLES) {
        const added = await as('owner', 'POST', `${ORGS}/${org}/members`, {
          email: `${role}@rbac.test`,
          role,
        });
        expect(added.statusCode, added.body).toBe(201);
      }
    });
    afterAll(async () => {
      await t?.close();
    });

    it('a viewer reads but cannot write anything', async () => {
      expect(await status('viewer', 'GET', `${ORGS}/${org}/workflows`)).toBe(200);
      expect(await status('viewer', 'GET', `${ORGS}/${org}/members`)).toBe(200);
      expect(await status('viewer', 'POST', `${ORGS}/${org}/workflows`, { name: 'w', definition: {} })).toBe(
        403,
      );
      const integration = { name: 'i', type: 'webhook', url: 'https://x.test', credentials: {} };
      expect(await status('viewer', 'POST', `${ORGS}/${org}/integrations`, integration)).toBe(403);
      expect(await status('viewer', 'PUT', `${ORGS}/${org}`, { name: 'mine' })).toBe(403);
      expect(await status('viewer', 'GET', `${ORGS}/${org}/api-keys`)).toBe(403);
      expect(await status('viewer', 'GET', `${ORGS}/${org}/audit-events`)).toBe(403);
      const workflow = (
        await as('owner', 'POST', `${ORGS}/${org}/workflows`, { name: 'w', definition: {} })
      ).json();
      expect(await status('viewer', 'PUT', `${ORGS}/${org}/workflows/${workflow.id}`, { name: 'x' })).toBe(
        403,
      );
      expect(await status('viewer', 'DELETE', `${ORGS}/${org}/workflows/${workflow.id}`)).toBe(403);
    });

    it('a developer builds workflows and integrations but cannot manage members or the organization', async () => {
      expect(
        await status('developer', 'POST', `${ORGS}/${org}/workflows`, { name: 'w', definition: {} }),
      ).toBe(201);
      const integration = { name: 'i', type: 'webhook', url: 'https://x.test', credentials: {} };
      expect(await status('developer', 'POST', `${ORGS}/${org}/integrations`, integration)).toBe(201);
      expect(
        await status('developer', 'POST', `${ORGS}/${org}/members`, {
          email: 'outsider@rbac.test',
          role: 'viewer',
        }),
      ).toBe(403);
      expect(await status('developer', 'PUT', member(ids.viewer), { role: 'admin' })).toBe(403);
      expect(await status('developer', 'DELETE', member(ids.viewer))).toBe(403);
      expect(await status('developer', 'PUT', `${ORGS}/${org}`, { name: 'dev' })).toBe(403);
      expect(await status('developer', 'DELETE', `${ORGS}/${org}`)).toBe(403);
      expect(await status('developer', 'GET', `${ORGS}/${org}/audit-events`)).toBe(403);
    });

    it('audit events are visible with audit:read only', async () => {
      expect(await status('auditor', 'GET', `${ORGS}/${org}/audit-events`)).toBe(200);
      expect(await status('admin', 'GET', `${ORGS}/${org}/audit-events`)).toBe(200);
      expect(await status('auditor', 'POST', `${ORGS}/${org}/workflows`, { name: 'w', definition: {} })).toBe(
        403,
      );
    });

    it('an admin manages members but cannot grant, change or remove the owner role', async () => {
      expect(await status('admin', 'PUT', member(ids.viewer), { role: 'developer' })).toBe(200);
      expect(await status('admin', 'PUT', member(ids.viewer), { role: 'viewer' })).toBe(200);
      expect(await status('admin', 'PUT', member(ids.viewer), { role: 'owner' })).toBe(403);
      expect(await status('admin', 'PUT', member(ids.admin), { role: 'owner' })).toBe(403);
      expect(await status('admin', 'PUT', member(ids.owner), { role: 'admin' })).toBe(403);
      expect(await status('admin', 'DELETE', member(ids.owner))).toBe(403);
      const grant = await as('admin', 'POST', `${ORGS}/${org}/members`, {
        email: 'outsider@rbac.test',
        role: 'owner',
      });
      expect(grant.statusCode).toBe(403);
      expect(await status('outsider', 'GET', `${ORGS}/${org}`)).toBe(404);
      expect(await status('admin', 'DELETE', `${ORGS}/${org}`)).toBe(403);
      expect((await as('owner', 'GET', member(ids.owner))).statusCode).toBe(404);
    });

    it('an API key manages no members, whatever its scope', async () => {
      const created = await as('owner', 'POST', `${ORGS}/${org}/api-keys`, {
        name: 'members',
        permissions: ['members:manage', 'members:read'],
      });
      expect(created.statusCode, created.body).toBe(201);
      const key = created.json().token as string;
      const before = (await as('owner', 'GET', `${ORGS}/${org}/members`)).json();
      const add = await call(t.app, key, 'POST', `${ORGS}/${org}/members`, {
        email: 'outsider@rbac.test',
        role: 'admin',
      });
      expect(add.statusCode, add.body).toBe(403);
      expect(add.json()).toMatchObject({ error: 'forbidden', message: expect.stringMatching(/people/) });
      for (const role of ['viewer', 'developer', 'owner'] as const) {
        const added = await call(t.app, key, 'POST', `${ORGS}/${org}/members`, {
          email: 'outsider@rbac.test',
          role,
        });
        expect(added.statusCode, role).toBe(403);
      }
      expect((await call(t.app, key, 'PUT', member(ids.viewer), { role: 'admin' })).statusCode).toBe(403);
      expect((await call(t.app, key, 'PUT', member(ids.viewer), { role: 'viewer' })).statusCode).toBe(403);
      expect((await call(t.app, key, 'DELETE', member(ids.viewer))).statusCode).toBe(403);
      expect((await call(t.app, key, 'DELETE', member(ids.owner))).statusCode).toBe(403);
      // Not a member: the same 404 as for anyone.
      expect((await call(t.app, key, 'DELETE', member(ids.outsider))).statusCode).toBe(404);
      expect((await as('owner', 'GET', `${ORGS}/${org}/members`)).json()).toEqual(before);
      expect(await status('outsider', 'GET', `${ORGS}/${org}`)).toBe(404);
    });

    it('an admin neither demotes nor removes an owner, nor turns anyone into one', async () => {
      for (const role of ['admin', 'viewer', 'owner'] as const) {
        const response = await as('admin', 'PUT', member(ids.owner), { role });
        expect(response.statusCode, role).toBe(403);
      }
      expect(await status('admin', 'DELETE', member(ids.owner))).toBe(403);
      expect(await status('admin', 'PUT', member(ids.developer), { role: 'owner' })).toBe(403);
      const roles = (await as('owner', 'GET', `${ORGS}/${org}/members`)).json().items;
      const roleOf = (id: string) => roles.find((m: { user_id: string }) => m.user_id === id).role;
      expect([roleOf(ids.owner), roleOf(ids.developer)]).toEqual(['owner', 'developer']);
      // Every other role is within an admin's own permissions.
      for (const role of ['admin', 'security', 'operator', 'auditor', 'viewer', 'developer'] as const) {
        expect(await status('admin', 'PUT', member(ids.developer), { role }), role).toBe(200);
      }
    });

    it('the last owner can be neither demoted nor removed', async () => {
      const demote = await as('owner', 'PUT', member(ids.owner), { role: 'admin' });
      expect(demote.statusCode).toBe(409);
      expect(demote.json()).toMatchObject({ error: 'conflict', message: expect.stringMatching(/owner/) });
      expect(await status('owner', 'DELETE', member(ids.owner))).toBe(409);
      expect(await status('platform', 'DELETE', member(ids.owner))).toBe(409);
      const roles = (await as('owner', 'GET', `${ORGS}/${org}/members`)).json().items;
      expect(roles.find((m: { user_id: string }) => m.user_id === ids.owner).role).toBe('owner');
    });

    it('an owner grants owner; concurrent demotions always leave one owner', async () => {
      const ownerCount = async () =>
        (await as('platform', 'GET', `${ORGS}/${org}/members`))
          .json()
          .items.filter((m: { role: string }) => m.role === 'owner').length;
      expect(await status('owner', 'PUT', member(ids.admin), { role: 'owner' })).toBe(200);
      // Each demotes the other: whoever goes second is no longer an owner.
      const crossed = await Promise.all([
        as('owner', 'PUT', member(ids.admin), { role: 'admin' }),
        as('admin', 'PUT', member(ids.owner), { role: 'admin' }),
      ]);
      expect(crossed.map((response) => response.statusCode).sort()).toEqual([200, 403]);
      expect(await ownerCount()).toBe(1);
      // The platform admin may grant owner although not a member.
      for (const who of ['owner', 'admin'] as const) {
        expect(await status('platform', 'PUT', member(ids[who]), { role: 'owner' })).toBe(200);
      }
      // Each steps down: whoever goes second would be the last owner.
      const stepDown = await Promise.all([
        as('owner', 'PUT', member(ids.owner), { role: 'admin' }),
        as('admin', 'PUT', member(ids.admin), { role: 'admin' }),
      ]);
      expect(stepDown.map((response) => response.statusCode).sort()).toEqual([200, 409]);
      expect(await ownerCount()).toBe(1);
      for (const who of ['owner', 'admin'] as const) {
        const role = who === 'owner' ? 'owner' : 'admin';
        expect(await status('platform', 'PUT', member(ids[who]), { role })).toBe(200);
      }
    });

    it('a removed member loses access at once', async () => {
      expect(await status('auditor', 'GET', `${ORGS}/${org}`)).toBe(200);
      expect(await status('admin', 'DELETE', member(ids.auditor))).toBe(204);
      expect(await status('auditor', 'GET', `${ORGS}/${org}`)).toBe(404);
      expect(
        await status('admin', 'POST', `${ORGS}/${org}/members`, {
          email: 'auditor@rbac.test',
          role: 'auditor',
        }),
      ).toBe(201);
    });

    it('lists only the caller’s organizations; the platform admin sees all of them', async () => {
      const other = (await as('outsider', 'POST', ORGS, { name: 'Elsewhere' })).json().id;
      const names = async (who: Who) =>
        (await as(who, 'GET', ORGS)).json().items.map((item: { id: string }) => item.id);
      expect(await names('viewer')).toEqual([org]);
      expect(await names('outsider')).toEqual([other]);
      expect(await names('platform')).toEqual([org, other]);
      expect(await status('platform', 'GET', `${ORGS}/${other}/workflows`)).toBe(200);
    });
  });
}

describe('who may deal in which role', () => {
  const authority = (permissions: Iterable<string>, owner = false) => ({
    permissions: new Set(permissions),
    owner,
  });

  it('the platform admin and owners deal in every role; admins in every role but owner', () => {
    for (const role of ALL_ROLES) {
      expect(roleGrantProblem(authority(PERMISSIONS, true), role), role).toBeNull();
      expect(roleGrantProblem(authority(ROLE_PERMISSIONS.owner, true), role), role).toBeNull();
      const admin = roleGrantProblem(authority(ROLE_PERMISSIONS.admin), role);
      if (role === 'owner') expect(admin).toMatch(/Only an owner/);
      else expect(admin, role).toBeNull();
    }
  });

  it('nobody hands out, takes away or removes a role holding a permission they lack', () => {
    // A manager of members with a developer's permissions (no such role today; the rule holds anyway).
    const manager = authority([...ROLE_PERMISSIONS.developer, 'members:manage']);
    expect(roleGrantProblem(manager, 'viewer')).toBeNull();
    expect(roleGrantProblem(manager, 'developer')).toBeNull();
    expect(roleGrantProblem(manager, 'admin')).toMatch(
      /^The role admin holds permissions you do not hold: .*org:update/,
    );
    expect(roleGrantProblem(manager, 'security')).toMatch(/audit:read/);
    expect(roleGrantProblem(manager, 'auditor')).toMatch(/audit:read/);
    expect(roleGrantProblem(manager, 'owner')).toMatch(/Only an owner/);
    // The owner flag alone is not enough: the permissions must be there too.
    expect(roleGrantProblem(authority(['members:manage'], true), 'viewer')).toMatch(/org:read/);
    expect(roleGrantProblem(authority([]), 'viewer')).toMatch(/workflows:read/);
    // A stored name that is not a role grants nothing, so anyone may move a member off it.
    expect(roleGrantProblem(authority([]), 'legacy')).toBeNull();
  });
});

rbacSuite('reference API roles on SQLite', {});
rbacSuite(
  'reference API roles on PostgreSQL with Redis',
  { database: 'postgres', env: { REDIS_URL: REDIS_URL_TEST } },
  !pgUp || !redisUp,
);
