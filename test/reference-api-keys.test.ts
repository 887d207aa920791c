import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import type { TestApp } from './support/app.ts';
import { ADMIN, call, createUser, login, STRONG_PASSWORD, startIdentityApp } from './support/identity.ts';
import { uniqueName } from './support/services.ts';

const ORGS = '/api/v1/organizations';

describe('organization API keys', () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  let t: TestApp;
  let owner: string;
  let developer: string;
  let developerId: string;
  let orgA: string;
  let orgB: string;

  const makeKey = async (token: string, org: string, body: Record<string, unknown>) => {
    clock.advance(1);
    return call(t.app, token, 'POST', `${ORGS}/${org}/api-keys`, body);
  };
  const key = async (org: string, permissions: string[], extra: Record<string, unknown> = {}) => {
    const response = await makeKey(owner, org, { name: 'k', permissions, ...extra });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: string; token: string };
  };
  const withHeader = (token: string, method: 'GET' | 'POST', url: string) =>
    t.app.inject({ method, url, headers: { 'x-api-key': token } });

  beforeAll(async () => {
    t = await startIdentityApp({
      clock,
      configure: (config) => {
        config.loadShedding.enabled = false;
        config.redis.keyPrefix = `${uniqueName('ref')}:`;
      },
    });
    const admin = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    await createUser(t.app, admin, 'owner@keys.test');
    developerId = await createUser(t.app, admin, 'dev@keys.test');
    owner = (await login(t.app, 'owner@keys.test', STRONG_PASSWORD)).access_token;
    developer = (await login(t.app, 'dev@keys.test', STRONG_PASSWORD)).access_token;
    orgA = (await call(t.app, owner, 'POST', ORGS, { name: 'A' })).json().id;
    orgB = (await call(t.app, owner, 'POST', ORGS, { name: 'B' })).json().id;
    await call(t.app, owner, 'POST', `${ORGS}/${orgA}/members`, {
      email: 'dev@keys.test',
      role: 'developer',
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('works as Authorization: Bearer and as X-API-Key, within its scope only', async () => {
    const { token } = await key(orgA, ['workflows:read', 'workflows:write']);
    expect((await call(t.app, token, 'GET', `${ORGS}/${orgA}/workflows`)).statusCode).toBe(200);
    expect((await withHeader(token, 'GET', `${ORGS}/${orgA}/workflows`)).statusCode).toBe(200);
    const created = await call(t.app, token, 'POST', `${ORGS}/${orgA}/workflows`, {
      name: 'k',
      definition: {},
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().created_by).toMatch(/^[0-9a-f]{16}$/);
    for (const [method, url] of [
      ['GET', `${ORGS}/${orgA}/integrations`],
      ['GET', `${ORGS}/${orgA}/members`],
      ['GET', `${ORGS}/${orgA}/audit-events`],
      ['GET', `${ORGS}/${orgA}/api-keys`],
      ['DELETE', `${ORGS}/${orgA}`],
    ] as const) {
      expect((await call(t.app, token, method, url)).statusCode, url).toBe(403);
    }
  });

  it('sees only its own organization and cannot create organizations', async () => {
    const { token } = await key(orgA, ['org:read']);
    const list = (await call(t.app, token, 'GET', ORGS)).json();
    expect(list.items.map((item: { id: string }) => item.id)).toEqual([orgA]);
    expect((await call(t.app, token, 'POST', ORGS, { name: 'by key' })).statusCode).toBe(403);
  });

  it('a key of organization A answers 404 on organization B', async () => {
    const { token } = await key(orgA, ['org:read', 'workflows:read']);
    expect((await call(t.app, token, 'GET', `${ORGS}/${orgB}`)).statusCode).toBe(404);
    expect((await withHeader(token, 'GET', `${ORGS}/${orgB}/workflows`)).statusCode).toBe(404);
  });

  it('can never hold a permission its creator lacks', async () => {
    const beyond = await makeKey(developer, orgA, {
      name: 'k',
      permissions: ['workflows:read', 'members:manage'],
    });
    expect(beyond.statusCode).toBe(403);
    expect(beyond.json().message).toContain('members:manage');
    expect((await makeKey(owner, orgA, { name: 'k', permissions: ['users:manage'] })).statusCode).toBe(403);
    expect((await makeKey(owner, orgA, { name: 'k', permissions: ['workflows:fly'] })).statusCode).toBe(400);
    expect((await makeKey(owner, orgA, { name: 'k', permissions: [] })).statusCode).toBe(400);
  });

  it('an API key creates no API keys, not even narrower ones', async () => {
    const manager = await key(orgA, ['apikeys:manage', 'workflows:read']);
    const count = async () =>
      (await call(t.app, owner, 'GET', `${ORGS}/${orgA}/api-keys?limit=200`)).json().items.length as number;
    const before = await count();
    for (const permissions of [['workflows:read'], ['apikeys:manage'], ['workflows:write']]) {
      const made = await makeKey(manager.token, orgA, { name: 'k', permissions });
      expect(made.statusCode, permissions.join()).toBe(403);
      expect(made.json()).toMatchObject({ error: 'forbidden', message: 'API keys are created by people' });
    }
    expect(await count()).toBe(before);
    // The key still lists keys: apikeys:manage is not taken away, only creating and revoking.
    expect((await call(t.app, manager.token, 'GET', `${ORGS}/${orgA}/api-keys`)).statusCode).toBe(200);
  });

  it('a key is revoked by its creator, or by someone who manages members; never by a key', async () => {
    const revoke = (token: string, id: string) =>
      call(t.app, token, 'DELETE', `${ORGS}/${orgA}/api-keys/${id}`);
    const alive = async (token: string) =>
      (await call(t.app, token, 'GET', `${ORGS}/${orgA}`)).statusCode === 200;
    const ownersKey = await key(orgA, ['org:read', 'apikeys:manage']);
    const devKey = (
      await makeKey(developer, orgA, { name: 'd', permissions: ['org:read', 'apikeys:manage'] })
    ).json();
    const devOther = (await makeKey(developer, orgA, { name: 'd2', permissions: ['org:read'] })).json();
    const devThird = (await makeKey(developer, orgA, { name: 'd3', permissions: ['org:read'] })).json();

    // A developer (apikeys:manage, not members:manage) cannot revoke the owner's key.
    const foreign = await revoke(developer, ownersKey.id);
    expect(foreign.statusCode, foreign.body).toBe(403);
    expect(await alive(ownersKey.token)).toBe(true);
    // Keys revoke no key: not another one, not their creator's, not themselves.
    for (const [caller, target] of [
      [devKey.token, devOther.id],
      [ownersKey.token, devOther.id],
      [devKey.token, devKey.id],
      [ownersKey.token, ownersKey.id],
    ] as const) {
      expect((await revoke(caller, target)).statusCode).toBe(403);
    }
    expect(await alive(devOther.token)).toBe(true);
    expect(await alive(devKey.token)).toBe(true);
    // A key of another organization is not found, for people and keys alike.
    const other = await key(orgB, ['org:read']);
    expect((await revoke(developer, other.id)).statusCode).toBe(404);
    expect((await revoke(devKey.token, other.id)).statusCode).toBe(404);
    expect((await call(t.app, other.token, 'GET', `${ORGS}/${orgB}`)).statusCode).toBe(200);
    // Its creator revokes it; an owner (members:manage) revokes anyone's.
    expect((await revoke(developer, devOther.id)).statusCode).toBe(204);
    expect(await alive(devOther.token)).toBe(false);
    expect((await revoke(owner, devThird.id)).statusCode).toBe(204);
    expect(await alive(devThird.token)).toBe(false);
    expect((await revoke(owner, devKey.id)).statusCode).toBe(204);
    expect((await revoke(owner, ownersKey.id)).statusCode).toBe(204);
  });

  it('a revoked key answers 401; revoking another organization’s key is 404', async () => {
    const a = await key(orgA, ['org:read']);
    const b = await key(orgB, ['org:read']);
    const foreign = await call(t.app, owner, 'DELETE', `${ORGS}/${orgA}/api-keys/${b.id}`);
    expect(foreign.statusCode).toBe(404);
    expect((await call(t.app, b.token, 'GET', `${ORGS}/${orgB}`)).statusCode).toBe(200);
    expect((await call(t.app, owner, 'DELETE', `${ORGS}/${orgA}/api-keys/${a.id}`)).statusCode).toBe(204);
    expect((await call(t.app, a.token, 'GET', `${ORGS}/${orgA}`)).statusCode).toBe(401);
    expect((await withHeader(a.token, 'GET', `${ORGS}/${orgA}`)).statusCode).toBe(401);
  });

  it('an expired key answers 401; a past expiry is refused', async () => {
    const expiresAt = new Date(clock.now() + 60_000).toISOString();
    const { token } = await key(orgA, ['org:read'], { expires_at: expiresAt });
    expect((await call(t.app, token, 'GET', `${ORGS}/${orgA}`)).statusCode).toBe(200);
    clock.advance(61_000);
    expect((await call(t.app, token, 'GET', `${ORGS}/${orgA}`)).statusCode).toBe(401);
    const past = new Date(clock.now() - 1000).toISOString();
    expect(
      (await makeKey(owner, orgA, { name: 'k', permissions: ['org:read'], expires_at: past })).statusCode,
    ).toBe(400);
    expect(
      (await makeKey(owner, orgA, { name: 'k', permissions: ['org:read'], expires_at: 'tomorrow' }))
        .statusCode,
    ).toBe(400);
  });

  it('a member loses the keys their new role does not cover, and all of them when removed', async () => {
    const reader = (await makeKey(developer, orgA, { name: 'r', permissions: ['workflows:read'] })).json();
    const writer = (await makeKey(developer, orgA, { name: 'w', permissions: ['workflows:write'] })).json();
    const url = `${ORGS}/${orgA}/members/${developerId}`;
    expect((await call(t.app, owner, 'PUT', url, { role: 'viewer' })).statusCode).toBe(200);
    expect((await call(t.app, writer.token, 'GET', `${ORGS}/${orgA}`)).statusCode).toBe(401);
    expect((await call(t.app, reader.token, 'GET', `${ORGS}/${orgA}/workflows`)).statusCode).toBe(200);
    expect((await call(t.app, owner, 'DELETE', url)).statusCode).toBe(204);
    expect((await call(t.app, reader.token, 'GET', `${ORGS}/${orgA}/workflows`)).statusCode).toBe(401);
    const audit = (
      await call(t.app, owner, 'GET', `${ORGS}/${orgA}/audit-events?action=member.remove`)
    ).json();
    expect(audit.items[0].details.revoked_api_keys).toEqual([reader.id]);
  });

  it('lists keys without secrets and records creation and revocation', async () => {
    const listed = await call(t.app, owner, 'GET', `${ORGS}/${orgA}/api-keys?limit=200`);
    expect(listed.statusCode).toBe(200);
    const items = listed.json().items as Array<Record<string, unknown>>;
    expect(items.length).toBeGreaterThan(5);
    for (const item of items) {
      expect(item).not.toHaveProperty('token');
      expect(item).not.toHaveProperty('secret_hash');
    }
    const audit = (await call(t.app, owner, 'GET', `${ORGS}/${orgA}/audit-events?limit=200`)).json();
    const actions = audit.items.map((event: { action: string }) => event.action);
    expect(actions).toContain('api_key.create');
    expect(actions).toContain('api_key.revoke');
  });
});
