import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp, TestAppOptions } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { postgresAvailable, REDIS_URL_TEST, redisAvailable, uniqueName } from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const ORGS = '/api/v1/organizations';

function versionSuite(name: string, options: TestAppOptions, skip = false): void {
  describe.skipIf(skip)(name, () => {
    let t: TestApp;
    let owner: string;
    let base: string;

    beforeAll(async () => {
      t = await startIdentityApp({
        ...options,
        configure: (config) => {
          config.loadShedding.enabled = false;
          config.redis.keyPrefix = `${uniqueName('ref')}:`;
        },
      });
      const admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
      await createUser(t.app, admin, 'owner@versions.test');
      owner = (await login(t.app, 'owner@versions.test', STRONG_PASSWORD)).access_token;
      const org = (await call(t.app, owner, 'POST', ORGS, { name: 'Versions' })).json().id as string;
      base = `${ORGS}/${org}/workflows`;
    });
    afterAll(async () => {
      await t?.close();
    });

    const create = async (definition: Record<string, unknown>) => {
      const response = await call(t.app, owner, 'POST', base, { name: 'Flow', definition });
      expect(response.statusCode, response.body).toBe(201);
      return response.json() as { id: string; version: number };
    };
    const versionsOf = async (id: string, query = '') => {
      const response = await call(t.app, owner, 'GET', `${base}/${id}/versions${query}`);
      expect(response.statusCode, response.body).toBe(200);
      return response.json() as {
        items: Array<{ version: number; name: string; description: string | null; definition: unknown }>;
        next_cursor: string | null;
      };
    };

    it('three updates make four versions, newest first, each as it was saved', async () => {
      const workflow = await create({ step: 0 });
      const updates = [{ name: 'Renamed' }, { definition: { step: 2 } }, { description: 'Third' }];
      for (const [index, body] of updates.entries()) {
        const response = await call(t.app, owner, 'PUT', `${base}/${workflow.id}`, body);
        expect(response.statusCode, response.body).toBe(200);
        expect(response.json().version).toBe(index + 2);
      }
      const { items } = await versionsOf(workflow.id);
      expect(items.map((item) => [item.version, item.name, item.description, item.definition])).toEqual([
        [4, 'Renamed', 'Third', { step: 2 }],
        [3, 'Renamed', null, { step: 2 }],
        [2, 'Renamed', null, { step: 0 }],
        [1, 'Flow', null, { step: 0 }],
      ]);
    });

    it('an update that changes nothing still saves a new version', async () => {
      const workflow = await create({ same: true });
      const response = await call(t.app, owner, 'PUT', `${base}/${workflow.id}`, {
        definition: { same: true },
      });
      expect(response.json().version).toBe(2);
      expect((await versionsOf(workflow.id)).items).toHaveLength(2);
    });

    it('ten concurrent updates make eleven distinct versions, none lost', async () => {
      const workflow = await create({ n: -1 });
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, n) =>
          call(t.app, owner, 'PUT', `${base}/${workflow.id}`, { definition: { n } }),
        ),
      );
      for (const response of responses) expect(response.statusCode, response.body).toBe(200);
      const answered = responses.map((response) => response.json().version as number).sort((a, b) => a - b);
      expect(answered).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      const { items } = await versionsOf(workflow.id);
      expect(items.map((item) => item.version)).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      const saved = items.slice(0, 10).map((item) => (item.definition as { n: number }).n);
      expect(new Set(saved).size).toBe(10);
      const current = await call(t.app, owner, 'GET', `${base}/${workflow.id}`);
      expect(current.json()).toMatchObject({ version: 11, definition: items[0]!.definition });
    });

    it('pages versions with limit and cursor', async () => {
      const workflow = await create({});
      for (let i = 0; i < 4; i++)
        await call(t.app, owner, 'PUT', `${base}/${workflow.id}`, { name: `v${i}` });
      const first = await versionsOf(workflow.id, '?limit=2');
      expect(first.items.map((item) => item.version)).toEqual([5, 4]);
      const second = await versionsOf(workflow.id, `?limit=2&cursor=${first.next_cursor}`);
      expect(second.items.map((item) => item.version)).toEqual([3, 2]);
      const last = await versionsOf(workflow.id, `?limit=2&cursor=${second.next_cursor}`);
      expect(last).toEqual({ items: [expect.objectContaining({ version: 1 })], next_cursor: null });
      const bad = await call(t.app, owner, 'GET', `${base}/${workflow.id}/versions?cursor=abc`);
      expect(bad.statusCode).toBe(400);
    });

    it('refuses deep, huge or prototype-poisoning definitions with 400/413, never 500', async () => {
      const workflow = await create({ kept: true });
      const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
      const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
      const cases: Array<[string, 'POST' | 'PUT', string, number]> = [
        ['100k levels', 'POST', `{"name":"D","definition":{"x":${deep(100_000)}}}`, 400],
        ['100k levels on update', 'PUT', `{"definition":{"x":${deep(100_000)}}}`, 400],
        ['65 levels', 'POST', `{"name":"D","definition":${nested(65)}}`, 400],
        ['100k levels as the name', 'POST', `{"name":${deep(100_000)},"definition":{}}`, 400],
        ['100k levels as the description', 'PUT', `{"description":${deep(100_000)}}`, 400],
        ['100k levels in an unknown field', 'POST', `{"name":"D","definition":{},"x":${deep(100_000)}}`, 400],
        ['a definition that is an array', 'POST', `{"name":"D","definition":${deep(10)}}`, 400],
        // Caught first by the JSON key-count limit of API protection (10,000 keys and items).
        [
          'an array of 300,000 items',
          'POST',
          `{"name":"D","definition":{"x":[${Array(300_000).fill('0').join(',')}]}}`,
          400,
        ],
        [
          'a definition larger than 256 KiB',
          'POST',
          `{"name":"D","definition":{"x":"${'x'.repeat(300_000)}"}}`,
          413,
        ],
        ['a body larger than the body limit', 'PUT', `{"definition":{"x":"${'x'.repeat(1_100_000)}"}}`, 413],
        ['__proto__', 'POST', '{"name":"D","definition":{"__proto__":{"admin":true}}}', 400],
        ['nested __proto__', 'PUT', '{"definition":{"steps":[{"__proto__":{"admin":true}}]}}', 400],
        [
          'constructor.prototype',
          'POST',
          '{"name":"D","definition":{"constructor":{"prototype":{"a":1}}}}',
          400,
        ],
      ];
      for (const [label, method, payload, status] of cases) {
        const response = await t.app.inject({
          method,
          url: method === 'POST' ? base : `${base}/${workflow.id}`,
          headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
          payload,
        });
        expect(response.statusCode, `${label}: ${response.body.slice(0, 200)}`).toBe(status);
      }
      const current = (await call(t.app, owner, 'GET', `${base}/${workflow.id}`)).json();
      expect(current).toMatchObject({ version: 1, definition: { kept: true } });
      // 64 levels is the limit, and is kept as sent.
      const deepest = await call(t.app, owner, 'PUT', `${base}/${workflow.id}`, {
        definition: JSON.parse(nested(64)),
      });
      expect(deepest.statusCode, deepest.body).toBe(200);
      expect(JSON.stringify(deepest.json().definition)).toBe(nested(64));
      expect(t.logs.lines.filter((line) => line.level === 50)).toEqual([]);
    });

    it('deleting a workflow deletes its versions', async () => {
      const workflow = await create({});
      await call(t.app, owner, 'PUT', `${base}/${workflow.id}`, { name: 'again' });
      expect((await call(t.app, owner, 'DELETE', `${base}/${workflow.id}`)).statusCode).toBe(204);
      const rows = await t.app.bastion.database.db
        .selectFrom('workflow_versions')
        .select('version')
        .where('workflow_id', '=', workflow.id)
        .execute();
      expect(rows).toEqual([]);
    });
  });
}

versionSuite('workflow versions on SQLite', {});
versionSuite(
  'workflow versions on PostgreSQL with Redis',
  { database: 'postgres', env: { REDIS_URL: REDIS_URL_TEST } },
  !pgUp || !redisUp,
);
