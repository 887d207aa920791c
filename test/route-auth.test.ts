import type { FastifyInstance, FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator, Principal } from '../src/core/principal.ts';
import { routeAuthProblem } from '../src/server/route-auth.ts';
import { startTestApp, type TestApp } from './support/app.ts';

const noop = async () => ({ ok: true });

async function expectStartupRejected(routes: (app: FastifyInstance) => void, message: RegExp) {
  await expect(startTestApp({ routes })).rejects.toThrow(message);
}

describe('route declaration rule at start-up', () => {
  it('rejects a route without config, naming the route', async () => {
    await expectStartupRejected(
      (app) => app.get('/undeclared', noop),
      /Route GET \/undeclared does not declare config\.auth/,
    );
  });

  it('rejects a route whose config has no auth', async () => {
    await expectStartupRejected(
      (app) => app.post('/orders', { config: {} }, noop),
      /Route POST \/orders does not declare config\.auth/,
    );
  });

  it('rejects an undeclared route inside an encapsulated plugin with a prefix', async () => {
    await expectStartupRejected((app) => {
      app.register(
        async (child) => {
          child.get('/hidden', noop);
        },
        { prefix: '/api/v1' },
      );
    }, /Route GET \/api\/v1\/hidden does not declare config\.auth/);
  });

  it('names every method of a multi-method route', async () => {
    await expectStartupRejected(
      (app) => app.route({ method: ['GET', 'POST'], url: '/both', handler: noop }),
      /Route GET,POST \/both/,
    );
  });

  it.each([
    ['admin', 'admin'],
    ['empty string', ''],
    ['uppercase public', 'PUBLIC'],
    ['padded permission', ' workflows:read'],
    ['trailing space', 'workflows:read '],
    ['wildcard', 'workflows:*'],
    ['missing action', 'workflows:'],
    ['two colons', 'a:b:c'],
    ['uppercase permission', 'Workflows:Read'],
    ['newline', 'workflows:read\n'],
  ])('rejects config.auth %s', async (_name, auth) => {
    await expectStartupRejected(
      (app) => app.get('/bad', { config: { auth } }, noop),
      new RegExp(
        `Route GET /bad has config\\.auth ${JSON.stringify(auth).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`,
      ),
    );
  });

  it.each([
    ['null', null],
    ['true', true],
    ['an array', ['workflows:read']],
    ['an object', { permission: 'workflows:read' }],
    ['a number', 1],
  ])('rejects a non-string config.auth (%s)', async (_name, auth) => {
    await expectStartupRejected(
      (app) => app.get('/bad', { config: { auth: auth as unknown as string } }, noop),
      /Route GET \/bad has config\.auth .*expected 'public', 'authenticated' or 'resource:action'/,
    );
  });

  it('does not leave a half-started app behind: a good app starts afterwards', async () => {
    await expect(
      startTestApp({
        routes: (app) => {
          app.get('/x', noop);
        },
      }),
    ).rejects.toThrow();
    const t = await startTestApp({
      routes: (app) => {
        app.get('/x', { config: { auth: 'public' } }, noop);
      },
    });
    expect((await t.app.inject({ method: 'GET', url: '/x' })).statusCode).toBe(200);
    await t.close();
  });

  it('accepts public and resource:action permissions', () => {
    for (const auth of ['public', 'workflows:read', 'monitoring:read', 'api-keys:manage', 'org:read']) {
      expect(routeAuthProblem({ method: 'GET', url: '/x', config: { auth } })).toBeNull();
    }
    expect(routeAuthProblem({ method: 'GET', url: '/x', config: undefined })).toMatch(/GET \/x/);
  });
});

describe('authentication and authorization per request', () => {
  let handlerCalls: Record<string, number>;
  let authCalls: number;

  const routes = (app: FastifyInstance) => {
    const count = (name: string) => async (request: FastifyRequest) => {
      handlerCalls[name] = (handlerCalls[name] ?? 0) + 1;
      return { route: name, principal: request.principal?.id ?? null };
    };
    app.get('/open', { config: { auth: 'public' } }, count('open'));
    app.get('/reports', { config: { auth: 'monitoring:read' } }, count('reports'));
    app.post('/reports', { config: { auth: 'monitoring:write' } }, count('reports-write'));
    app.get(
      '/with-prehandler',
      {
        config: { auth: 'monitoring:read' },
        preHandler: async () => {
          handlerCalls.preHandler = (handlerCalls.preHandler ?? 0) + 1;
        },
      },
      count('with-prehandler'),
    );
  };

  describe('with no authenticator (the default)', () => {
    let t: TestApp;
    beforeAll(async () => {
      handlerCalls = {};
      t = await startTestApp({ routes });
    });
    afterAll(async () => {
      await t?.close();
    });

    it.each([
      ['no credentials', {}],
      ['a forged bearer token', { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' }],
      ['a forged API key', { 'x-api-key': 'bst_forged_key_0000000000000000' }],
      ['basic auth', { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` }],
      ['a spoofed user header', { 'x-user-id': 'admin', 'x-forwarded-user': 'admin' }],
    ])('answers 401 unauthorized with %s', async (_name, headers) => {
      for (const [method, url] of [
        ['GET', '/reports'],
        ['HEAD', '/reports'],
        ['POST', '/reports'],
        ['GET', '/health/detailed'],
      ] as const) {
        const res = await t.app.inject({ method, url, headers });
        expect(res.statusCode).toBe(401);
        if (method !== 'HEAD') {
          expect(res.json()).toEqual({
            error: 'unauthorized',
            message: 'Authentication is required',
            request_id: res.headers['x-request-id'],
          });
        }
      }
      expect(handlerCalls.reports ?? 0).toBe(0);
      expect(handlerCalls['reports-write'] ?? 0).toBe(0);
    });

    it("runs the auth check before the route's own preHandler", async () => {
      const res = await t.app.inject({ method: 'GET', url: '/with-prehandler' });
      expect(res.statusCode).toBe(401);
      expect(handlerCalls.preHandler ?? 0).toBe(0);
      expect(handlerCalls['with-prehandler'] ?? 0).toBe(0);
    });

    it('serves public routes', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/open' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ route: 'open', principal: null });
    });
  });

  describe('with an authenticator', () => {
    let t: TestApp;
    const principals: Record<string, Principal> = {
      reader: { kind: 'user', id: 'user-reader', orgId: 'org-1', permissions: new Set(['monitoring:read']) },
      nobody: { kind: 'user', id: 'user-nobody', orgId: 'org-1', permissions: new Set() },
      lookalike: {
        kind: 'api_key',
        id: 'key-lookalike',
        orgId: null,
        permissions: new Set(['monitoring:*', 'monitoring', 'monitoring:readx', 'MONITORING:READ', '*']),
      },
    };
    const authenticate: Authenticator<FastifyRequest> = async (request) => {
      authCalls += 1;
      const token = request.headers.authorization?.replace(/^Bearer /, '') ?? '';
      if (token === 'explode') throw new Error('identity store unreachable at 10.0.0.5:5432');
      return principals[token] ?? null;
    };

    beforeAll(async () => {
      handlerCalls = {};
      authCalls = 0;
      t = await startTestApp({ routes, authenticate });
    });
    afterAll(async () => {
      await t?.close();
    });

    const as = (who: string) => ({ authorization: `Bearer ${who}` });

    it('never calls the authenticator for public routes, health, metrics or 404s', async () => {
      const before = authCalls;
      for (const url of ['/open', '/health/live', '/health/ready', '/no/such/route']) {
        const res = await t.app.inject({ method: 'GET', url, headers: as('reader') });
        expect(res.statusCode).toBeLessThan(500);
      }
      await t.app.inject({ method: 'HEAD', url: '/open', headers: as('reader') });
      expect(authCalls).toBe(before);
    });

    it('answers 401 when the authenticator finds nobody', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/reports', headers: as('stranger') });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('unauthorized');
      expect(handlerCalls.reports ?? 0).toBe(0);
    });

    it('answers 403 forbidden to a principal without the permission', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/reports', headers: as('nobody') });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({
        error: 'forbidden',
        message: 'You do not have permission to do this',
        request_id: res.headers['x-request-id'],
      });
      expect(handlerCalls.reports ?? 0).toBe(0);
    });

    it('matches permissions exactly (no wildcard, prefix or case games)', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/reports', headers: as('lookalike') });
      expect(res.statusCode).toBe(403);
      expect(handlerCalls.reports ?? 0).toBe(0);
    });

    it('answers 200 to a principal with the permission and hands the principal to the handler', async () => {
      const before = authCalls;
      const res = await t.app.inject({ method: 'GET', url: '/reports', headers: as('reader') });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ route: 'reports', principal: 'user-reader' });
      expect(handlerCalls.reports).toBe(1);
      expect(authCalls).toBe(before + 1);
      const access = t.logs.lines.find(
        (line) => line.msg === 'request completed' && line.request_id === res.headers['x-request-id'],
      );
      expect(access).toMatchObject({ status: 200, user_id: 'user-reader', org_id: 'org-1' });
    });

    it('checks the permission of the method, not just the path', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/reports', headers: as('reader') });
      expect(res.statusCode).toBe(403);
      expect(handlerCalls['reports-write'] ?? 0).toBe(0);
    });

    it('grants /health/detailed with monitoring:read only', async () => {
      expect(
        (await t.app.inject({ method: 'GET', url: '/health/detailed', headers: as('nobody') })).statusCode,
      ).toBe(403);
      expect(
        (await t.app.inject({ method: 'GET', url: '/health/detailed', headers: as('reader') })).statusCode,
      ).toBe(200);
    });

    it('turns a failing authenticator into a 500 that reveals nothing', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/reports', headers: as('explode') });
      expect(res.statusCode).toBe(500);
      expect(res.json().error).toBe('internal_error');
      expect(res.body).not.toContain('10.0.0.5');
      expect(handlerCalls.reports).toBe(1);
    });

    describe('HEAD on a GET route', () => {
      it('works for a public route, with headers and no body', async () => {
        const res = await t.app.inject({ method: 'HEAD', url: '/health/live' });
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^application\/health\+json/);
        expect(res.headers['x-request-id']).toBeTruthy();
        expect(res.body).toBe('');
      });

      it('is protected exactly like GET (no auth bypass through HEAD)', async () => {
        const calls = handlerCalls.reports ?? 0;
        expect((await t.app.inject({ method: 'HEAD', url: '/reports' })).statusCode).toBe(401);
        expect(
          (await t.app.inject({ method: 'HEAD', url: '/reports', headers: as('nobody') })).statusCode,
        ).toBe(403);
        expect(handlerCalls.reports ?? 0).toBe(calls);
        const ok = await t.app.inject({ method: 'HEAD', url: '/reports', headers: as('reader') });
        expect(ok.statusCode).toBe(200);
        expect(ok.body).toBe('');
      });
    });
  });
});

describe('route auth comes before the body', () => {
  it('answers 401 to an anonymous caller before parsing, validating or limiting the body', async () => {
    const t = await startTestApp({
      env: { BASTION_BODY_LIMIT: '64' },
      routes: (app) => {
        app.post(
          '/items',
          {
            config: { auth: 'items:write' },
            schema: {
              body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
            },
          },
          async () => ({ ok: true }),
        );
      },
    });
    try {
      const cases = [
        { payload: '{}', headers: { 'content-type': 'application/json' } },
        { payload: '{"name": 1', headers: { 'content-type': 'application/json' } },
        {
          payload: JSON.stringify({ name: 'x'.repeat(500) }),
          headers: { 'content-type': 'application/json' },
        },
        { payload: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      ];
      for (const item of cases) {
        const response = await t.app.inject({ method: 'POST', url: '/items', ...item });
        expect(response.statusCode).toBe(401);
        expect(response.json()).toMatchObject({ error: 'unauthorized' });
        expect(response.body).not.toContain('name');
      }
    } finally {
      await t.close();
    }
  });
});
