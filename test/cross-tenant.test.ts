import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERMISSIONS, PLATFORM_PERMISSIONS } from '../src/identity/permissions.ts';
import type { TestApp, TestAppOptions } from './support/app.ts';
import {
  ADMIN,
  bearer,
  call,
  createUser,
  login,
  STRONG_PASSWORD,
  startIdentityApp,
} from './support/identity.ts';
import { postgresAvailable, REDIS_URL_TEST, redisAvailable, uniqueName } from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const ORGS = '/api/v1/organizations';
const ORG_PERMISSIONS = PERMISSIONS.filter((permission) => !PLATFORM_PERMISSIONS.includes(permission));
const SECRET = 'tenant-a-secret-3b9f1c';

/** The tenant routes the contract names; the walk covers these and any other `:org` route the app has. */
const CONTRACT = [
  'GET /:org',
  'PUT /:org',
  'DELETE /:org',
  'GET /:org/members',
  'POST /:org/members',
  'PUT /:org/members/:userId',
  'DELETE /:org/members/:userId',
  'GET /:org/workflows',
  'POST /:org/workflows',
  'GET /:org/workflows/:id',
  'PUT /:org/workflows/:id',
  'DELETE /:org/workflows/:id',
  'GET /:org/workflows/:id/versions',
  'GET /:org/integrations',
  'POST /:org/integrations',
  'GET /:org/integrations/:id',
  'PUT /:org/integrations/:id',
  'DELETE /:org/integrations/:id',
  'POST /:org/integrations/:id/test',
  'GET /:org/api-keys',
  'POST /:org/api-keys',
  'DELETE /:org/api-keys/:id',
  'GET /:org/audit-events',
].map((route) => route.replace(' /', ` ${ORGS}/`));

/** A valid body for each route that takes one, so that validation passes and the lookup decides. */
const BODIES: Record<string, unknown> = {
  [`PUT ${ORGS}/:org`]: { name: 'Hijacked' },
  [`POST ${ORGS}/:org/members`]: { email: 'member-a@tenant.test', role: 'admin' },
  [`PUT ${ORGS}/:org/members/:userId`]: { role: 'admin' },
  [`POST ${ORGS}/:org/workflows`]: { name: 'Hijacked', definition: { evil: true } },
  [`PUT ${ORGS}/:org/workflows/:id`]: { name: 'Hijacked', definition: { evil: true } },
  [`POST ${ORGS}/:org/integrations`]: { name: 'H', type: 'webhook', url: 'https://x.test', credentials: {} },
  [`PUT ${ORGS}/:org/integrations/:id`]: { name: 'Hijacked', credentials: { token: 'replaced' } },
  [`POST ${ORGS}/:org/api-keys`]: { name: 'Hijacked', permissions: ['org:read'] },
};

interface Tenant {
  org: string;
  owner: string;
  key: string;
  ids: Record<'workflows' | 'integrations' | 'api-keys', string>;
  member: string;
}

interface Route {
  method: string;
  url: string;
}

/** The URL of a route for one tenant's ids, in organization `org`. */
function urlFor(route: Route, org: string, ids: Tenant): string {
  const segments = route.url.split('/');
  return segments
    .map((segment, index) => {
      if (segment === ':org') return org;
      if (segment === ':userId') return ids.member;
      if (segment === ':id') {
        const collection = segments[index - 1] as keyof Tenant['ids'];
        const id = ids.ids[collection];
        if (!id) throw new Error(`No fixture for :id of ${route.method} ${route.url}: add one to the walk`);
        return id;
      }
      if (segment.startsWith(':')) throw new Error(`No fixture for ${segment} in ${route.url}: add one`);
      return segment;
    })
    .join('/');
}

function bodyFor(route: Route): unknown {
  if (route.method !== 'POST' && route.method !== 'PUT') return undefined;
  const key = `${route.method} ${route.url}`;
  if (key in BODIES || key.endsWith('/test')) return BODIES[key];
  throw new Error(`No sample body for ${key}: add one to BODIES so the walk reaches the lookup`);
}

/**
 * Every route of the app with each of its methods, read from Fastify's own route tree (an
 * `onRoute` hook added through the test app's `routes` option comes too late: the API's routes are
 * registered before it).
 */
function routesOf(app: FastifyInstance): Route[] {
  const found: Route[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const start = line.indexOf('/');
    if (start < 0) continue;
    const depth = Math.round(start / 4);
    const match = /^(\S+)(?: \(([^)]*)\))?/.exec(line.slice(start));
    if (!match) continue;
    const path = (prefixes[depth - 1] ?? '') + match[1];
    prefixes[depth] = path;
    for (const method of match[2]?.split(', ') ?? []) found.push({ method, url: path });
  }
  return found;
}

function crossTenantSuite(name: string, options: TestAppOptions, skip = false): void {
  describe.skipIf(skip)(name, () => {
    let t: TestApp;
    let admin: string;
    let a: Tenant;
    let b: Tenant;
    let receiver: Server;
    let hits = 0;
    const routes: Route[] = [];

    const makeTenant = async (label: string, url: string): Promise<Tenant> => {
      const app = t.app;
      await createUser(app, admin, `owner-${label}@tenant.test`);
      const member = await createUser(app, admin, `member-${label}@tenant.test`);
      const owner = (await login(app, `owner-${label}@tenant.test`, STRONG_PASSWORD)).access_token;
      const org = (await call(app, owner, 'POST', ORGS, { name: `Tenant ${label}` })).json().id;
      const base = `${ORGS}/${org}`;
      await call(app, owner, 'POST', `${base}/members`, {
        email: `member-${label}@tenant.test`,
        role: 'viewer',
      });
      const workflow = (
        await call(app, owner, 'POST', `${base}/workflows`, { name: 'W', definition: {} })
      ).json();
      await call(app, owner, 'PUT', `${base}/workflows/${workflow.id}`, { description: 'v2' });
      const integration = (
        await call(app, owner, 'POST', `${base}/integrations`, {
          name: 'I',
          type: 'webhook',
          url,
          credentials: { token: SECRET },
        })
      ).json();
      const key = (
        await call(app, owner, 'POST', `${base}/api-keys`, { name: 'all', permissions: ORG_PERMISSIONS })
      ).json();
      expect([workflow.id, integration.id, key.id].every(Boolean)).toBe(true);
      return {
        org,
        owner,
        key: key.token,
        member,
        ids: { workflows: workflow.id, integrations: integration.id, 'api-keys': key.id },
      };
    };

    /** Everything stored about tenant A, to compare before and after the walk. */
    const snapshot = async (tenant: Tenant) => {
      const { db } = t.app.bastion.database;
      const byOrg = async (table: 'memberships' | 'workflows' | 'integrations' | 'api_keys') =>
        db.selectFrom(table).selectAll().where('org_id', '=', tenant.org).execute();
      return {
        organization: await db.selectFrom('organizations').selectAll().where('id', '=', tenant.org).execute(),
        memberships: await byOrg('memberships'),
        workflows: await byOrg('workflows'),
        versions: await db
          .selectFrom('workflow_versions')
          .selectAll()
          .where('workflow_id', '=', tenant.ids.workflows)
          .orderBy('version')
          .execute(),
        integrations: await byOrg('integrations'),
        apiKeys: await byOrg('api_keys'),
        secrets: await db
          .selectFrom('secrets')
          .selectAll()
          .where('name', 'like', `integrations/${tenant.org}/%`)
          .execute(),
        secretVersions: await db
          .selectFrom('secret_versions')
          .selectAll()
          .where('name', 'like', `integrations/${tenant.org}/%`)
          .execute(),
        audit: await db.selectFrom('audit_events').select('id').where('org_id', '=', tenant.org).execute(),
      };
    };

    beforeAll(async () => {
      receiver = createServer((_request, response) => {
        hits += 1;
        response.writeHead(204).end();
      });
      receiver.listen(0, '127.0.0.1');
      await once(receiver, 'listening');
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      t = await startIdentityApp({
        ...options,
        configure: (config) => {
          config.loadShedding.enabled = false;
          config.redis.keyPrefix = `${uniqueName('ref')}:`;
        },
      });
      admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
      a = await makeTenant('a', url);
      b = await makeTenant('b', url);
      routes.push(...routesOf(t.app));
    });
    afterAll(async () => {
      await t?.close();
      receiver?.close();
    });

    const tenantRoutes = () => routes.filter((route) => route.url.split('/').includes(':org'));
    const send = (route: Route, url: string, headers: Record<string, string>) => {
      const payload = bodyFor(route);
      return t.app.inject({
        method: route.method as HTTPMethods,
        url,
        headers,
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
    };

    it('finds every tenant route of the contract and of the OpenAPI document', () => {
      const found = new Set(tenantRoutes().map((route) => `${route.method} ${route.url}`));
      for (const route of CONTRACT) expect(found, route).toContain(route);
      const document = t.app.swagger() as { paths: Record<string, Record<string, unknown>> };
      for (const [path, operations] of Object.entries(document.paths)) {
        if (!path.includes('{org}')) continue;
        for (const method of Object.keys(operations)) {
          expect(found).toContain(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
        }
      }
    });

    it("answers 404 on every route and method, for B's callers in A and for A's ids in B", async () => {
      const before = await snapshot(a);
      const callers = () => ({
        'B owner': bearer(b.owner),
        'B key (Bearer)': bearer(b.key),
        'B key (X-API-Key)': { 'x-api-key': b.key },
      });
      const failures: string[] = [];
      let checked = 0;
      for (const route of tenantRoutes()) {
        const attempts: Array<[string, string, Record<string, string>]> = [];
        for (const [who, headers] of Object.entries(callers())) {
          attempts.push([`${who} in A with A's ids`, urlFor(route, a.org, a), headers]);
          attempts.push([`${who} in A with B's ids`, urlFor(route, a.org, b), headers]);
          if (route.url.split('/').some((segment) => segment.startsWith(':') && segment !== ':org')) {
            attempts.push([`${who} in B with A's ids`, urlFor(route, b.org, a), headers]);
          }
        }
        if (route.url.split('/').some((segment) => segment.startsWith(':') && segment !== ':org')) {
          attempts.push(["platform admin in B with A's ids", urlFor(route, b.org, a), bearer(admin)]);
        }
        for (const [label, url, headers] of attempts) {
          const response = await send(route, url, headers);
          checked += 1;
          if (response.statusCode !== 404) {
            failures.push(
              `${route.method} ${url} (${label}): ${response.statusCode} ${response.body.slice(0, 120)}`,
            );
          }
          expect(response.body).not.toContain(SECRET);
        }
      }
      expect(failures).toEqual([]);
      expect(checked).toBeGreaterThan(150);
      expect(hits).toBe(0);
      expect(await snapshot(a)).toEqual(before);
      // A's own callers still work, so the 404s above were not a broken tenant.
      expect(
        (await call(t.app, a.owner, 'GET', `${ORGS}/${a.org}/workflows/${a.ids.workflows}`)).statusCode,
      ).toBe(200);
      expect(
        (await call(t.app, a.key, 'GET', `${ORGS}/${a.org}/integrations/${a.ids.integrations}`)).statusCode,
      ).toBe(200);
    });

    it("the answer for another tenant's id is the same as for an id that does not exist", async () => {
      const missing = '0'.repeat(28);
      for (const collection of ['workflows', 'integrations'] as const) {
        const foreign = await call(
          t.app,
          b.owner,
          'GET',
          `${ORGS}/${b.org}/${collection}/${a.ids[collection]}`,
        );
        const absent = await call(t.app, b.owner, 'GET', `${ORGS}/${b.org}/${collection}/${missing}`);
        expect(foreign.statusCode).toBe(404);
        const { request_id: _one, ...foreignBody } = foreign.json();
        const { request_id: _two, ...absentBody } = absent.json();
        expect(foreignBody).toEqual(absentBody);
      }
    });
  });
}

crossTenantSuite('cross-tenant walk on SQLite', {});
crossTenantSuite(
  'cross-tenant walk on PostgreSQL with Redis',
  { database: 'postgres', env: { REDIS_URL: REDIS_URL_TEST } },
  !pgUp || !redisUp,
);
