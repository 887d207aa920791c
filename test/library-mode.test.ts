import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bastion, loadConfig } from '../src/index.ts';
import { LogCapture } from './support/app.ts';
import { ADMIN, bearer, createUser, login, STRONG_PASSWORD } from './support/identity.ts';

/**
 * Library mode: `app.register(bastion, options)` inside a user's own Fastify app protects the
 * user's routes by their `config.auth`, tenant routes by membership, and observes them.
 */
let dataDir: string;
let app: FastifyInstance;
const logs = new LogCapture();

async function userApp(): Promise<FastifyInstance> {
  const config = await loadConfig({
    file: null,
    env: {
      NODE_ENV: 'test',
      BASTION_DATA_DIR: dataDir,
      BASTION_ADMIN_EMAIL: ADMIN.email,
      BASTION_ADMIN_PASSWORD: ADMIN.password,
    },
  });
  // Load shedding measures this test process's event loop, which other test files share.
  config.loadShedding.enabled = false;
  const { createLogger } = await import('../src/observability/logger.ts');
  const instance = Fastify({ ajv: { customOptions: { removeAdditional: false } } });
  await instance.register(bastion, { config, logger: createLogger(config, logs), referenceApi: true });
  return instance;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-library-'));
  app = await userApp();
  app.get('/things/public', { config: { auth: 'public' } }, async () => ({ ok: true }));
  app.get('/orgs/:org/things', { config: { auth: 'workflows:read' } }, async (request) => ({
    org: (request.params as { org: string }).org,
    caller: request.principal?.id,
  }));
  app.post('/orgs/:org/things', { config: { auth: 'workflows:write' } }, async () => ({ written: true }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('app.register(bastion)', () => {
  it("protects the user's own routes by config.auth and organization membership", async () => {
    expect((await app.inject({ url: '/things/public' })).statusCode).toBe(200);
    const admin = await login(app, ADMIN.email, ADMIN.password);
    const org = await app.inject({
      method: 'POST',
      url: '/api/v1/organizations',
      headers: bearer(admin.access_token),
      payload: { name: 'Acme' },
    });
    expect(org.statusCode, org.body).toBe(201);
    const orgId = (org.json() as { id: string }).id;

    const anonymous = await app.inject({ url: `/orgs/${orgId}/things` });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: 'unauthorized' });

    // A signed-in outsider learns nothing about the organization.
    await createUser(app, admin.access_token, 'outsider@example.com');
    const outsider = await login(app, 'outsider@example.com', STRONG_PASSWORD);
    const hidden = await app.inject({ url: `/orgs/${orgId}/things`, headers: bearer(outsider.access_token) });
    expect(hidden.statusCode).toBe(404);

    // A viewer may read but not write.
    await createUser(app, admin.access_token, 'viewer@example.com');
    const added = await app.inject({
      method: 'POST',
      url: `/api/v1/organizations/${orgId}/members`,
      headers: bearer(admin.access_token),
      payload: { email: 'viewer@example.com', role: 'viewer' },
    });
    expect(added.statusCode, added.body).toBe(201);
    const viewer = await login(app, 'viewer@example.com', STRONG_PASSWORD);
    const read = await app.inject({ url: `/orgs/${orgId}/things`, headers: bearer(viewer.access_token) });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ org: orgId });
    const write = await app.inject({
      method: 'POST',
      url: `/orgs/${orgId}/things`,
      headers: bearer(viewer.access_token),
    });
    expect(write.statusCode).toBe(403);
    expect(write.headers['x-request-id']).toBeTruthy();
  });

  it('observes the routes: metrics by route template', async () => {
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(
      /http_server_request_duration_seconds_count\{[^}]*route="\/orgs\/:org\/things"/,
    );
  });

  it('refuses a route that does not declare config.auth', async () => {
    const other = await userApp();
    try {
      expect(() => other.get('/undeclared', async () => ({}))).toThrow(/config\.auth/);
    } finally {
      await other.close();
    }
  });
});
