import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

rbacSuite('reference API roles on SQLite', {});
rbacSuite(
  'reference API roles on PostgreSQL with Redis',
  { database: 'postgres', env: { REDIS_URL: REDIS_URL_TEST } },
  !pgUp || !redisUp,
);
