import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp, TestAppOptions } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { postgresAvailable, REDIS_URL_TEST, redisAvailable, uniqueName } from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const ORGS = '/api/v1/organizations';
const ID = /^[0-9a-f]{28}$/;

function expectStatus(response: LightMyRequestResponse, status: number): void {
  expect(response.statusCode, `${response.statusCode} ${response.body}`).toBe(status);
}

function crudSuite(name: string, options: TestAppOptions, skip = false): void {
  describe.skipIf(skip)(name, () => {
    let t: TestApp;
    let owner: string;
    let ownerId: string;
    let memberId: string;
    let org: string;
    const as = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
      call(t.app, owner, method, url, payload);

    beforeAll(async () => {
      t = await startIdentityApp({
        ...options,
        configure: (config) => {
          // Two apps start at once on a busy machine: shedding would answer 503 to the set-up.
          config.loadShedding.enabled = false;
          config.redis.keyPrefix = `${uniqueName('ref')}:`;
        },
      });
      const admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
      ownerId = await createUser(t.app, admin, 'owner@crud.test');
      memberId = await createUser(t.app, admin, 'member@crud.test', STRONG_PASSWORD, { name: 'Mia' });
      owner = (await login(t.app, 'owner@crud.test', STRONG_PASSWORD)).access_token;
    });
    afterAll(async () => {
      await t?.close();
    });

    it('organizations: create, list, read, rename', async () => {
      const created = await as('POST', ORGS, { name: 'Acme' });
      expectStatus(created, 201);
      const body = created.json();
      expect(body).toMatchObject({ name: 'Acme', role: 'owner', created_by: ownerId });
      expect(body.id).toMatch(ID);
      expect(created.headers['cache-control']).toBe('no-store');
      org = body.id;

      const list = await as('GET', ORGS);
      expectStatus(list, 200);
      expect(list.json()).toEqual({ items: [body], next_cursor: null });
      expectStatus(await as('GET', `${ORGS}/${org}`), 200);
      const renamed = await as('PUT', `${ORGS}/${org}`, { name: 'Acme Corp' });
      expectStatus(renamed, 200);
      expect(renamed.json()).toMatchObject({ id: org, name: 'Acme Corp' });
      expect((await as('GET', `${ORGS}/${org}`)).json().name).toBe('Acme Corp');
    });

    it('organizations: lists page by id with limit and cursor', async () => {
      for (const name of ['Two', 'Three']) expectStatus(await as('POST', ORGS, { name }), 201);
      const first = (await as('GET', `${ORGS}?limit=2`)).json();
      expect(first.items.map((item: { name: string }) => item.name)).toEqual(['Acme Corp', 'Two']);
      const second = (await as('GET', `${ORGS}?limit=2&cursor=${first.next_cursor}`)).json();
      expect(second).toMatchObject({ items: [{ name: 'Three' }], next_cursor: null });
    });

    it('members: add by e-mail, list, change role, remove', async () => {
      const added = await as('POST', `${ORGS}/${org}/members`, { email: 'MEMBER@crud.test', role: 'viewer' });
      expectStatus(added, 201);
      expect(added.json()).toEqual({
        user_id: memberId,
        email: 'member@crud.test',
        name: 'Mia',
        role: 'viewer',
        created_at: expect.any(String),
      });
      const again = await as('POST', `${ORGS}/${org}/members`, { email: 'member@crud.test', role: 'admin' });
      expectStatus(again, 409);
      const unknown = await as('POST', `${ORGS}/${org}/members`, {
        email: 'nobody@crud.test',
        role: 'viewer',
      });
      expectStatus(unknown, 404);
      expect(unknown.body).not.toContain('nobody');

      const list = (await as('GET', `${ORGS}/${org}/members`)).json();
      expect(list.items.map((m: { user_id: string; role: string }) => [m.user_id, m.role])).toEqual([
        [ownerId, 'owner'],
        [memberId, 'viewer'],
      ]);
      const changed = await as('PUT', `${ORGS}/${org}/members/${memberId}`, { role: 'developer' });
      expectStatus(changed, 200);
      expect(changed.json()).toMatchObject({ user_id: memberId, role: 'developer' });
      expectStatus(await as('DELETE', `${ORGS}/${org}/members/${memberId}`), 204);
      expectStatus(await as('DELETE', `${ORGS}/${org}/members/${memberId}`), 404);
      expect((await as('GET', `${ORGS}/${org}/members`)).json().items).toHaveLength(1);
    });

    it('workflows: create, list, read, update, versions, delete', async () => {
      const definition = { steps: [{ run: 'scan', with: { depth: 2 } }], nested: { a: [1, 'b', null] } };
      const created = await as('POST', `${ORGS}/${org}/workflows`, { name: 'Scan', definition });
      expectStatus(created, 201);
      const workflow = created.json();
      expect(workflow).toMatchObject({ name: 'Scan', description: null, definition, version: 1 });
      const url = `${ORGS}/${org}/workflows/${workflow.id}`;
      expect((await as('GET', `${ORGS}/${org}/workflows`)).json()).toEqual({
        items: [workflow],
        next_cursor: null,
      });
      expect((await as('GET', url)).json()).toEqual(workflow);

      const updated = await as('PUT', url, { description: 'Nightly' });
      expectStatus(updated, 200);
      expect(updated.json()).toMatchObject({ name: 'Scan', description: 'Nightly', definition, version: 2 });
      const versions = (await as('GET', `${url}/versions`)).json();
      expect(versions.items.map((v: { version: number }) => v.version)).toEqual([2, 1]);
      expect(versions.items[1]).toMatchObject({ workflow_id: workflow.id, description: null, definition });

      expectStatus(await as('PUT', url, {}), 400);
      expectStatus(await as('POST', `${ORGS}/${org}/workflows`, { name: 'x', definition: [1] }), 400);
      const huge = { blob: 'x'.repeat(300 * 1024) };
      expectStatus(await as('POST', `${ORGS}/${org}/workflows`, { name: 'Big', definition: huge }), 413);
      let deep: Record<string, unknown> = {};
      for (let level = 0; level < 200; level++) deep = { d: deep };
      expectStatus(await as('POST', `${ORGS}/${org}/workflows`, { name: 'Deep', definition: deep }), 400);

      expectStatus(await as('DELETE', url), 204);
      expectStatus(await as('GET', url), 404);
      expectStatus(await as('GET', `${url}/versions`), 404);
    });

    it('integrations: create, list, read, update, delete (the vault secret goes too)', async () => {
      const created = await as('POST', `${ORGS}/${org}/integrations`, {
        name: 'Hook',
        type: 'webhook',
        url: 'https://hooks.example.com/in',
        credentials: { token: 'crud-token-1' },
      });
      expectStatus(created, 201);
      const integration = created.json();
      expect(integration).toMatchObject({ name: 'Hook', type: 'webhook', has_credentials: true });
      expect(created.body).not.toContain('crud-token-1');
      const url = `${ORGS}/${org}/integrations/${integration.id}`;
      expect((await as('GET', url)).json()).toEqual(integration);
      expect((await as('GET', `${ORGS}/${org}/integrations`)).json().items).toEqual([integration]);

      const renamed = await as('PUT', url, { name: 'Hook 2', url: 'https://hooks.example.com/v2' });
      expectStatus(renamed, 200);
      expect(renamed.json()).toMatchObject({ name: 'Hook 2', url: 'https://hooks.example.com/v2' });
      const secret = `integrations/${org}/${integration.id}`;
      expectStatus(await as('PUT', url, { credentials: { token: 'crud-token-2' } }), 200);
      expect((await t.app.bastion.vault.info(secret)).current_version).toBe(2);
      expect(JSON.parse((await t.app.bastion.vault.get(secret)).value)).toEqual({ token: 'crud-token-2' });

      expectStatus(await as('DELETE', url), 204);
      expectStatus(await as('GET', url), 404);
      await expect(t.app.bastion.vault.info(secret)).rejects.toMatchObject({ statusCode: 404 });
    });

    it('api keys: create, list, use, revoke', async () => {
      const created = await as('POST', `${ORGS}/${org}/api-keys`, {
        name: 'ci',
        permissions: ['workflows:read'],
      });
      expectStatus(created, 201);
      const key = created.json();
      expect(key.token).toMatch(/^bst_[0-9a-f]{16}_/);
      expect(key).toMatchObject({ name: 'ci', permissions: ['workflows:read'], revoked_at: null });
      const listed = (await as('GET', `${ORGS}/${org}/api-keys`)).json();
      expect(listed.items).toEqual([expect.objectContaining({ id: key.id, prefix: `bst_${key.id}_` })]);
      expect(JSON.stringify(listed)).not.toContain(key.token);
      expectStatus(await call(t.app, key.token, 'GET', `${ORGS}/${org}/workflows`), 200);
      expectStatus(await as('DELETE', `${ORGS}/${org}/api-keys/${key.id}`), 204);
      expectStatus(await call(t.app, key.token, 'GET', `${ORGS}/${org}/workflows`), 401);
      expect((await as('GET', `${ORGS}/${org}/api-keys`)).json().items[0].revoked_at).toEqual(
        expect.any(String),
      );
    });

    it('records every change in the audit trail with actor, target and request context', async () => {
      const update = await as('PUT', `${ORGS}/${org}`, { name: 'Acme Audited' });
      const events = (await as('GET', `${ORGS}/${org}/audit-events?limit=200`)).json().items as Array<{
        action: string;
        category: string;
        actor: { type: string; id: string };
        target: { type: string; id: string };
        org_id: string;
        ip: string;
        request_id: string;
      }>;
      const actions = new Set(events.map((event) => event.action));
      for (const action of [
        'organization.create',
        'organization.update',
        'member.add',
        'member.update',
        'member.remove',
        'workflow.create',
        'workflow.update',
        'workflow.delete',
        'integration.create',
        'integration.update',
        'integration.delete',
        'api_key.create',
        'api_key.revoke',
      ]) {
        expect(actions, action).toContain(action);
      }
      expect(events[0]).toMatchObject({
        action: 'organization.update',
        category: 'change',
        org_id: org,
        actor: { type: 'user', id: ownerId },
        target: { type: 'organization', id: org },
        ip: '127.0.0.1',
        request_id: update.headers['x-request-id'],
      });
      const filtered = (await as('GET', `${ORGS}/${org}/audit-events?action=member.add`)).json().items;
      expect(filtered.map((event: { action: string }) => event.action)).toEqual(['member.add']);
    });

    it('refuses fields the caller may not set (mass assignment) with 400', async () => {
      const workflow = (await as('POST', `${ORGS}/${org}/workflows`, { name: 'W', definition: {} })).json();
      const cases: Array<['POST' | 'PUT', string, Record<string, unknown>]> = [
        ['POST', ORGS, { name: 'X', id: '0'.repeat(28) }],
        ['POST', ORGS, { name: 'X', created_by: memberId }],
        ['PUT', `${ORGS}/${org}`, { name: 'X', owner_id: memberId }],
        [
          'POST',
          `${ORGS}/${org}/members`,
          { email: 'member@crud.test', role: 'viewer', platform_admin: true },
        ],
        ['POST', `${ORGS}/${org}/members`, { email: 'member@crud.test', role: 'superuser' }],
        ['PUT', `${ORGS}/${org}/members/${ownerId}`, { role: 'owner', user_id: memberId }],
        ['POST', `${ORGS}/${org}/workflows`, { name: 'X', definition: {}, id: '0'.repeat(28) }],
        ['POST', `${ORGS}/${org}/workflows`, { name: 'X', definition: {}, org_id: org }],
        ['POST', `${ORGS}/${org}/workflows`, { name: 'X', definition: {}, version: 7 }],
        ['PUT', `${ORGS}/${org}/workflows/${workflow.id}`, { version: 99 }],
        ['PUT', `${ORGS}/${org}/workflows/${workflow.id}`, { name: 'Y', created_by: memberId }],
        [
          'POST',
          `${ORGS}/${org}/integrations`,
          { name: 'I', type: 'webhook', url: 'https://x.test', credentials: {}, secret_name: 'other' },
        ],
        [
          'POST',
          `${ORGS}/${org}/integrations`,
          { name: 'I', type: 'webhook', url: 'https://x.test', credentials: {}, has_credentials: false },
        ],
        ['POST', `${ORGS}/${org}/api-keys`, { name: 'k', permissions: ['org:read'], org_id: org }],
        ['POST', `${ORGS}/${org}/api-keys`, { name: 'k', permissions: ['org:read'], revoked_at: null }],
      ];
      for (const [method, url, payload] of cases) {
        const response = await as(method, url, payload);
        expect(response.statusCode, `${method} ${url} ${JSON.stringify(payload)}`).toBe(400);
      }
      expect((await as('GET', `${ORGS}/${org}/workflows/${workflow.id}`)).json().version).toBe(1);
    });

    it('answers 400/413, never 500, to deep, huge or prototype-poisoning JSON on every body route', async () => {
      const workflow = (await as('POST', `${ORGS}/${org}/workflows`, { name: 'W', definition: {} })).json();
      const integration = (
        await as('POST', `${ORGS}/${org}/integrations`, {
          name: 'I',
          type: 'webhook',
          url: 'https://x.test/',
          credentials: {},
        })
      ).json();
      // Each route with a valid body, whose first field the cases below replace.
      const routes: Array<['POST' | 'PUT', string, Record<string, unknown>]> = [
        ['POST', ORGS, { name: 'X' }],
        ['PUT', `${ORGS}/${org}`, { name: 'X' }],
        ['POST', `${ORGS}/${org}/members`, { email: 'member@crud.test', role: 'viewer' }],
        ['PUT', `${ORGS}/${org}/members/${ownerId}`, { role: 'owner' }],
        ['POST', `${ORGS}/${org}/workflows`, { name: 'X', definition: {} }],
        ['PUT', `${ORGS}/${org}/workflows/${workflow.id}`, { name: 'X' }],
        ['POST', `${ORGS}/${org}/integrations`, { name: 'X', type: 'webhook', url: 'https://x.test/' }],
        ['PUT', `${ORGS}/${org}/integrations/${integration.id}`, { name: 'X' }],
        ['POST', `${ORGS}/${org}/api-keys`, { name: 'X', permissions: ['org:read'] }],
      ];
      const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
      const deepObject = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
      const wide = `[${Array(200_000).fill('"x"').join(',')}]`;
      const failures: string[] = [];
      for (const [method, url, valid] of routes) {
        const [first, ...rest] = Object.entries(valid);
        const others = rest
          .map(([name, value]) => `,${JSON.stringify(name)}:${JSON.stringify(value)}`)
          .join('');
        const field = (value: string) => `{${JSON.stringify(first![0])}:${value}${others}}`;
        const bodies = {
          'deep array body': deep,
          'deep object body': deepObject,
          'deep first field': field(deep),
          'deep object first field': field(deepObject),
          'wide first field': field(wide),
          'deep unknown field': `${field(JSON.stringify(first![1])).slice(0, -1)},"zz":${deep}}`,
          '__proto__ key': `${field(JSON.stringify(first![1])).slice(0, -1)},"__proto__":{"role":"owner"}}`,
          'constructor.prototype': `${field(JSON.stringify(first![1])).slice(0, -1)},"constructor":{"prototype":{"a":1}}}`,
        };
        for (const [label, payload] of Object.entries(bodies)) {
          const response = await t.app.inject({
            method,
            url,
            headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
            payload,
          });
          if (![400, 413].includes(response.statusCode)) {
            failures.push(
              `${method} ${url} (${label}): ${response.statusCode} ${response.body.slice(0, 120)}`,
            );
          }
        }
      }
      expect(failures).toEqual([]);
      expect(t.logs.lines.filter((line) => line.level === 50)).toEqual([]);
    });

    it('validates path parameters (ids) and integration URLs', async () => {
      // An organization id that cannot exist is simply not one the caller belongs to.
      expectStatus(await as('GET', `${ORGS}/not-an-id`), 404);
      expectStatus(await as('GET', `${ORGS}/${org}/workflows/1`), 400);
      expectStatus(await as('GET', `${ORGS}/${org}/integrations/${org}x`), 400);
      expectStatus(await as('DELETE', `${ORGS}/${org}/api-keys/x`), 400);
      for (const bad of [
        'ftp://x.test/',
        'file:///etc/passwd',
        'https://user:pw@x.test/',
        'javascript:alert(1)',
      ]) {
        const response = await as('POST', `${ORGS}/${org}/integrations`, {
          name: 'I',
          type: 'webhook',
          url: bad,
          credentials: {},
        });
        expect(response.statusCode, bad).toBe(400);
      }
    });

    it('documents every route in the OpenAPI document with tags and a summary', () => {
      const document = t.app.swagger() as {
        paths: Record<string, Record<string, { tags?: string[]; summary?: string }>>;
      };
      const operations = Object.entries(document.paths)
        .filter(([path]) => path.startsWith(ORGS))
        .flatMap(([path, methods]) =>
          Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
        );
      expect(operations.length).toBeGreaterThanOrEqual(25);
      for (const { path, method, operation } of operations) {
        expect(operation.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
        expect(operation.summary, `${method} ${path}`).toBeTruthy();
      }
    });

    it('organizations: delete removes everything of the organization', async () => {
      const integration = (
        await as('POST', `${ORGS}/${org}/integrations`, {
          name: 'Doomed',
          type: 'webhook',
          url: 'https://x.test/',
          credentials: { token: 'doomed-token' },
        })
      ).json();
      const key = (
        await as('POST', `${ORGS}/${org}/api-keys`, { name: 'k', permissions: ['org:read'] })
      ).json();
      expectStatus(await call(t.app, key.token, 'GET', `${ORGS}/${org}`), 200);
      expectStatus(await as('DELETE', `${ORGS}/${org}`), 204);
      expectStatus(await as('GET', `${ORGS}/${org}`), 404);
      expectStatus(await call(t.app, key.token, 'GET', `${ORGS}/${org}`), 401);
      const { db } = t.app.bastion.database;
      for (const table of ['memberships', 'api_keys', 'workflows', 'integrations'] as const) {
        const rows = await db.selectFrom(table).select('org_id').where('org_id', '=', org).execute();
        expect(rows, table).toEqual([]);
      }
      await expect(t.app.bastion.vault.info(`integrations/${org}/${integration.id}`)).rejects.toMatchObject({
        statusCode: 404,
      });
      const trail = await db.selectFrom('audit_events').select('action').where('org_id', '=', org).execute();
      expect(trail.map((row) => row.action)).toContain('organization.delete');
    });
  });
}

crudSuite('reference API CRUD on SQLite', {});
crudSuite(
  'reference API CRUD on PostgreSQL with Redis',
  { database: 'postgres', env: { REDIS_URL: REDIS_URL_TEST } },
  !pgUp || !redisUp,
);
