import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import { ManualClock } from '../src/core/clock.ts';
import { newId } from '../src/core/ids.ts';
import type { SessionView } from '../src/identity/sessions.ts';
import { createApp } from '../src/server/create-app.ts';
import { createPostgresSchema, LogCapture, type TestApp } from './support/app.ts';
import {
  ADMIN,
  call,
  createUser,
  login,
  STRONG_PASSWORD,
  startIdentityApp,
  type Tokens,
} from './support/identity.ts';
import {
  DATABASE_URL_TEST,
  postgresAvailable,
  REDIS_URL_TEST,
  redisAvailable,
  uniqueName,
} from './support/services.ts';

const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const PROBE = '/api/v1/probe-orgs/:org';

type SessionItem = SessionView;

function sessionOf(tokens: Tokens): string {
  return decodeJwt(tokens.access_token).sid as string;
}

function refresh(app: FastifyInstance, refreshToken: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } });
}

async function status(app: FastifyInstance, token: string, url = '/auth/me'): Promise<number> {
  return (await call(app, token, 'GET', url)).statusCode;
}

/** Polls until `check` is true (at most `ms`); returns how long it took, or throws. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('sessions of one instance', () => {
  let t: TestApp;
  let adminToken: string;
  let aliceId: string;
  let bobId: string;

  const alice = () => login(t.app, 'alice@example.test', STRONG_PASSWORD);
  const bob = () => login(t.app, 'bob@example.test', STRONG_PASSWORD);

  beforeAll(async () => {
    t = await startIdentityApp({
      configure: (config) => {
        config.loadShedding.enabled = false;
      },
    });
    adminToken = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    aliceId = await createUser(t.app, adminToken, 'alice@example.test');
    bobId = await createUser(t.app, adminToken, 'bob@example.test');
  });

  afterAll(async () => {
    await t?.close();
  });

  it('lists my live sessions, newest first, with the current one flagged, and no secrets', async () => {
    const first = await alice();
    const second = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'alice@example.test', password: STRONG_PASSWORD },
      headers: { 'user-agent': 'session-test/2' },
      remoteAddress: '192.0.2.77',
    });
    const secondTokens = second.json() as Tokens;
    await bob();
    const response = await call(t.app, first.access_token, 'GET', '/auth/sessions');
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const { items } = response.json() as { items: SessionItem[] };
    const mine = items.filter((item) => [sessionOf(first), sessionOf(secondTokens)].includes(item.id));
    expect(mine).toHaveLength(2);
    expect(items.map((item) => item.id)).toEqual([...items.map((item) => item.id)].sort().reverse());
    expect(items.filter((item) => item.current).map((item) => item.id)).toEqual([sessionOf(first)]);
    expect(items.find((item) => item.id === sessionOf(secondTokens))).toMatchObject({
      current: false,
      ip: '192.0.2.77',
      user_agent: 'session-test/2',
      mfa: false,
    });
    // Only alice's sessions, and never a token or hash.
    const bobSessions = (await call(t.app, adminToken, 'GET', `/api/v1/admin/users/${bobId}/sessions`)).json()
      .items as SessionItem[];
    for (const session of bobSessions) expect(items.map((item) => item.id)).not.toContain(session.id);
    for (const secret of [first.refresh_token, secondTokens.refresh_token, first.access_token]) {
      expect(response.body).not.toContain(secret);
    }
    expect(response.body).not.toMatch(/token|hash/);
  });

  it('ending one of my sessions stops its access token at once and its refresh token', async () => {
    const mine = await alice();
    const other = await alice();
    const response = await call(t.app, mine.access_token, 'DELETE', `/auth/sessions/${sessionOf(other)}`);
    expect(response.statusCode).toBe(204);
    expect(await status(t.app, other.access_token)).toBe(401);
    expect((await refresh(t.app, other.refresh_token)).statusCode).toBe(401);
    expect(await status(t.app, mine.access_token)).toBe(200);
    const { items } = (await call(t.app, mine.access_token, 'GET', '/auth/sessions')).json() as {
      items: SessionItem[];
    };
    expect(items.map((item) => item.id)).not.toContain(sessionOf(other));
    const events = await t.app.bastion.identity.audit.listForActor(aliceId);
    expect(events.find((event) => event.action === 'auth.session_revoked')?.target?.id).toBe(
      sessionOf(other),
    );
  });

  it("another user's session id answers 404, exactly like one that does not exist, and stays live", async () => {
    const mine = await alice();
    const victim = await bob();
    const foreign = await call(t.app, mine.access_token, 'DELETE', `/auth/sessions/${sessionOf(victim)}`);
    const missing = await call(t.app, mine.access_token, 'DELETE', `/auth/sessions/${newId()}`);
    expect(foreign.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    const { request_id: _a, ...foreignBody } = foreign.json() as Record<string, unknown>;
    const { request_id: _b, ...missingBody } = missing.json() as Record<string, unknown>;
    expect(foreignBody).toEqual(missingBody);
    for (const junk of ['..%2F..%2Fadmin', "x'%20OR%20'1'%3D'1", 'a'.repeat(65)]) {
      const response = await call(t.app, mine.access_token, 'DELETE', `/auth/sessions/${junk}`);
      // 403: attack detection refused the traversal or SQL before routing; never another's session.
      expect([400, 403, 404], junk).toContain(response.statusCode);
    }
    expect(await status(t.app, victim.access_token)).toBe(200);
    expect((await refresh(t.app, victim.refresh_token)).statusCode).toBe(200);
  });

  it("the admin lists and ends a user's sessions; others may not", async () => {
    const session = await alice();
    const list = await call(t.app, adminToken, 'GET', `/api/v1/admin/users/${aliceId}/sessions`);
    expect(list.statusCode).toBe(200);
    expect((list.json().items as SessionItem[]).map((item) => item.id)).toContain(sessionOf(session));

    // Not for a non-admin, not under another user's id, not for a user that does not exist.
    const bobTokens = await bob();
    const url = `/api/v1/admin/users/${aliceId}/sessions/${sessionOf(session)}`;
    expect(
      (await call(t.app, bobTokens.access_token, 'GET', `/api/v1/admin/users/${aliceId}/sessions`))
        .statusCode,
    ).toBe(403);
    expect((await call(t.app, bobTokens.access_token, 'DELETE', url)).statusCode).toBe(403);
    expect((await call(t.app, session.access_token, 'DELETE', url)).statusCode).toBe(403);
    const wrongUser = `/api/v1/admin/users/${bobId}/sessions/${sessionOf(session)}`;
    expect((await call(t.app, adminToken, 'DELETE', wrongUser)).statusCode).toBe(404);
    expect((await call(t.app, adminToken, 'GET', `/api/v1/admin/users/${newId()}/sessions`)).statusCode).toBe(
      404,
    );
    expect(await status(t.app, session.access_token)).toBe(200);

    expect((await call(t.app, adminToken, 'DELETE', url)).statusCode).toBe(204);
    expect(await status(t.app, session.access_token)).toBe(401);
    expect((await refresh(t.app, session.refresh_token)).statusCode).toBe(401);
    expect((await call(t.app, adminToken, 'DELETE', url)).statusCode).toBe(404);
  });

  it('disabling an account ends its sessions at once; re-enabling does not bring them back', async () => {
    const carolId = await createUser(t.app, adminToken, 'carol@example.test');
    const carol = await login(t.app, 'carol@example.test', STRONG_PASSWORD);
    const spare = await login(t.app, 'carol@example.test', STRONG_PASSWORD);
    expect(await status(t.app, carol.access_token)).toBe(200);
    const put = (body: Record<string, unknown>) =>
      call(t.app, adminToken, 'PUT', `/api/v1/admin/users/${carolId}`, body);

    expect((await put({ status: 'disabled' })).statusCode).toBe(200);
    expect(await status(t.app, carol.access_token)).toBe(401);
    expect((await refresh(t.app, spare.refresh_token)).statusCode).toBe(401);
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: 'carol@example.test', password: STRONG_PASSWORD },
        })
      ).statusCode,
    ).toBe(401);

    expect((await put({ status: 'active' })).statusCode).toBe(200);
    expect(await status(t.app, carol.access_token)).toBe(401);
    expect((await refresh(t.app, carol.refresh_token)).statusCode).toBe(401);
    expect(
      await status(t.app, (await login(t.app, 'carol@example.test', STRONG_PASSWORD)).access_token),
    ).toBe(200);
  });

  it('deleting a user ends its sessions at once', async () => {
    const daveId = await createUser(t.app, adminToken, 'dave@example.test');
    const dave = await login(t.app, 'dave@example.test', STRONG_PASSWORD);
    expect((await call(t.app, adminToken, 'DELETE', `/api/v1/admin/users/${daveId}`)).statusCode).toBe(204);
    expect(await status(t.app, dave.access_token)).toBe(401);
    expect((await refresh(t.app, dave.refresh_token)).statusCode).toBe(401);
  });

  it('dropping the platform admin flag takes the admin permissions away at once', async () => {
    const erinId = await createUser(t.app, adminToken, 'erin@example.test', STRONG_PASSWORD, {
      platform_admin: true,
    });
    const erin = await login(t.app, 'erin@example.test', STRONG_PASSWORD);
    expect(await status(t.app, erin.access_token, '/api/v1/admin/users')).toBe(200);
    const put = await call(t.app, adminToken, 'PUT', `/api/v1/admin/users/${erinId}`, {
      platform_admin: false,
    });
    expect(put.statusCode).toBe(200);
    expect(await status(t.app, erin.access_token, '/api/v1/admin/users')).toBe(403);
    expect(await status(t.app, erin.access_token)).toBe(200);
  });

  it('a password change ends the other sessions and keeps this one', async () => {
    await createUser(t.app, adminToken, 'frank@example.test');
    const mine = await login(t.app, 'frank@example.test', STRONG_PASSWORD);
    const other = await login(t.app, 'frank@example.test', STRONG_PASSWORD);
    const change = await call(t.app, mine.access_token, 'POST', '/auth/password', {
      current_password: STRONG_PASSWORD,
      new_password: 'Copper-Willow-Sextant-884',
    });
    expect(change.statusCode).toBe(204);
    expect(await status(t.app, mine.access_token)).toBe(200);
    expect(await status(t.app, other.access_token)).toBe(401);
    expect((await refresh(t.app, other.refresh_token)).statusCode).toBe(401);
    expect((await refresh(t.app, mine.refresh_token)).statusCode).toBe(200);
  });
});

describe('session timeouts', () => {
  const clock = new ManualClock(Date.now());
  let t: TestApp;
  let userId: string;

  beforeAll(async () => {
    t = await startIdentityApp({
      clock,
      configure: (config) => {
        config.loadShedding.enabled = false;
        config.identity.accessTokenTtlSeconds = 60;
        config.identity.sessionIdleTimeoutSeconds = 120;
        config.identity.sessionAbsoluteTimeoutSeconds = 600;
      },
    });
    const admin = await login(t.app, ADMIN.email, ADMIN.password);
    userId = await createUser(t.app, admin.access_token, 'sleepy@example.test');
  });

  afterAll(async () => {
    await t?.close();
  });

  const liveSessions = async () =>
    (await t.app.bastion.identity.sessions.list(userId)).map((session) => session.id);

  it('an idle session ends: a refresh within the idle time extends it, one after it fails', async () => {
    const tokens = await login(t.app, 'sleepy@example.test', STRONG_PASSWORD);
    clock.advance(100_000);
    // The access token itself expired after 60 s.
    expect(await status(t.app, tokens.access_token)).toBe(401);
    const refreshed = await refresh(t.app, tokens.refresh_token);
    expect(refreshed.statusCode).toBe(200);
    const next = refreshed.json() as Tokens;
    expect(await status(t.app, next.access_token)).toBe(200);
    clock.advance(119_000);
    expect(await liveSessions()).toContain(sessionOf(tokens));
    clock.advance(1_000);
    expect(await liveSessions()).not.toContain(sessionOf(tokens));
    const late = await refresh(t.app, next.refresh_token);
    expect(late.statusCode).toBe(401);
    expect(late.json().error).toBe('invalid_refresh_token');
  });

  it('a session ends at its absolute lifetime however often it is refreshed', async () => {
    let tokens = await login(t.app, 'sleepy@example.test', STRONG_PASSWORD);
    const sessionId = sessionOf(tokens);
    for (let elapsed = 100; elapsed < 600; elapsed += 100) {
      clock.advance(100_000);
      const response = await refresh(t.app, tokens.refresh_token);
      expect(response.statusCode, `at ${elapsed} s`).toBe(200);
      tokens = response.json() as Tokens;
      expect(sessionOf(tokens)).toBe(sessionId);
    }
    clock.advance(100_000);
    expect((await refresh(t.app, tokens.refresh_token)).statusCode).toBe(401);
    expect(await liveSessions()).not.toContain(sessionId);
  });
});

describe.skipIf(!pgUp || !redisUp)('two instances sharing PostgreSQL and Redis', () => {
  interface Instance {
    app: FastifyInstance;
    dataDir: string;
    logs: LogCapture;
  }
  let one: Instance;
  let two: Instance;
  let redis: Redis;
  let adminToken: string;
  const keyPrefix = `${uniqueName('bastion_test')}:`;

  async function start(schema: string, masterKey: string): Promise<Instance> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-test-'));
    const config = await loadConfig({
      file: null,
      env: {
        NODE_ENV: 'test',
        BASTION_DATA_DIR: dataDir,
        BASTION_LOG_FORMAT: 'json',
        LOG_LEVEL: 'info',
        DATABASE_URL: DATABASE_URL_TEST,
        REDIS_URL: REDIS_URL_TEST,
        BASTION_MASTER_KEY: masterKey,
        BASTION_ADMIN_EMAIL: ADMIN.email,
        BASTION_ADMIN_PASSWORD: ADMIN.password,
      },
    });
    config.redis.keyPrefix = keyPrefix;
    config.loadShedding.enabled = false;
    const logs = new LogCapture();
    const app = await createApp({
      config,
      logDestination: logs,
      databaseSchema: schema,
      routes: (instance) => {
        instance.get(PROBE, { config: { auth: 'org:read' } }, async () => ({ ok: true }));
      },
    });
    return { app, dataDir, logs };
  }

  beforeAll(async () => {
    const { schema } = await createPostgresSchema();
    const masterKey = randomBytes(32).toString('base64');
    one = await start(schema, masterKey);
    two = await start(schema, masterKey);
    redis = new Redis(REDIS_URL_TEST);
    adminToken = (await login(one.app, ADMIN.email, ADMIN.password)).access_token;
    await createUser(one.app, adminToken, 'roamer@example.test');
  });

  afterAll(async () => {
    for (const instance of [one, two]) {
      await instance?.app.close();
      if (instance) await rm(instance.dataDir, { recursive: true, force: true });
    }
    if (redis) {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  it('both instances run on Redis and one schema', () => {
    expect(one.app.bastion.state.kind).toBe('redis');
    expect(two.app.bastion.state.kind).toBe('redis');
    expect(one.app.bastion.database.kind).toBe('postgres');
  });

  it('a token from instance 1 works on 2; after logout on 1 it is refused on 2 within a second', async () => {
    const tokens = await login(one.app, 'roamer@example.test', STRONG_PASSWORD);
    expect(await status(two.app, tokens.access_token)).toBe(200);
    expect(await status(one.app, tokens.access_token)).toBe(200);
    expect((await call(one.app, tokens.access_token, 'POST', '/auth/logout')).statusCode).toBe(204);
    expect(await status(one.app, tokens.access_token)).toBe(401);
    // Instance 2 saw this session live a moment ago (and trusts that for revocationRecheckMs):
    // only the pub/sub message can make it refuse the token this fast.
    const took = await within(1000, async () => (await status(two.app, tokens.access_token)) === 401);
    expect(took).toBeLessThan(1000);
    expect((await refresh(two.app, tokens.refresh_token)).statusCode).toBe(401);
  });

  it('a refresh-token replay on instance 2 revokes the family on instance 1', async () => {
    const first = await login(one.app, 'roamer@example.test', STRONG_PASSWORD);
    const second = (await refresh(one.app, first.refresh_token)).json() as Tokens;
    expect(await status(one.app, second.access_token)).toBe(200);
    expect(await status(two.app, second.access_token)).toBe(200);

    const replay = await refresh(two.app, first.refresh_token);
    expect(replay.statusCode).toBe(401);
    await within(1000, async () => (await status(one.app, second.access_token)) === 401);
    expect(await status(two.app, second.access_token)).toBe(401);
    expect((await refresh(one.app, second.refresh_token)).statusCode).toBe(401);
    const events = await one.app.bastion.database.db
      .selectFrom('audit_events')
      .select(['category', 'action'])
      .where('action', '=', 'auth.refresh_token_reused')
      .where('target_id', '=', sessionOf(first))
      .execute();
    expect(events).toEqual([{ category: 'security', action: 'auth.refresh_token_reused' }]);
  });

  it('one refresh token sent to both instances at once: at most one exchange succeeds', async () => {
    for (let round = 0; round < 3; round++) {
      const tokens = await login(one.app, 'roamer@example.test', STRONG_PASSWORD);
      const answers = await Promise.all([
        refresh(one.app, tokens.refresh_token),
        refresh(two.app, tokens.refresh_token),
        refresh(one.app, tokens.refresh_token),
        refresh(two.app, tokens.refresh_token),
      ]);
      const codes = answers.map((answer) => answer.statusCode);
      expect(codes.filter((code) => code === 200).length).toBeLessThanOrEqual(1);
      expect(codes.every((code) => code === 200 || code === 401)).toBe(true);
    }
  });

  it('disabling an account on instance 1 refuses its token on instance 2 at once', async () => {
    const id = await createUser(one.app, adminToken, 'leaver@example.test');
    const tokens = await login(two.app, 'leaver@example.test', STRONG_PASSWORD);
    expect(await status(two.app, tokens.access_token)).toBe(200);
    const put = await call(one.app, adminToken, 'PUT', `/api/v1/admin/users/${id}`, { status: 'disabled' });
    expect(put.statusCode).toBe(200);
    await within(1000, async () => (await status(two.app, tokens.access_token)) === 401);
  });

  it('dropping the platform admin flag on instance 1 takes effect on instance 2 at once', async () => {
    const id = await createUser(one.app, adminToken, 'deputy@example.test', STRONG_PASSWORD, {
      platform_admin: true,
    });
    const tokens = await login(two.app, 'deputy@example.test', STRONG_PASSWORD);
    expect(await status(two.app, tokens.access_token, '/api/v1/admin/users')).toBe(200);
    const put = await call(one.app, adminToken, 'PUT', `/api/v1/admin/users/${id}`, {
      platform_admin: false,
    });
    expect(put.statusCode).toBe(200);
    // Instance 2 cached the user as an admin (for 10 s): only the pub/sub message clears it this fast.
    await within(
      1000,
      async () => (await status(two.app, tokens.access_token, '/api/v1/admin/users')) === 403,
    );
  });

  it('an account locked through instance 1 is locked on instance 2', async () => {
    await createUser(one.app, adminToken, 'target@example.test');
    for (let i = 0; i < 5; i++) {
      const response = await one.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'target@example.test', password: `wrong-${i}` },
      });
      expect(response.statusCode).toBe(401);
    }
    const locked = await two.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'target@example.test', password: STRONG_PASSWORD },
    });
    expect(locked.statusCode).toBe(401);
  });

  it('a membership removed on instance 1 stops access on instance 2 at once', async () => {
    const tokens = await login(one.app, 'roamer@example.test', STRONG_PASSWORD);
    const userId = decodeJwt(tokens.access_token).sub!;
    const db = one.app.bastion.database.db;
    const at = new Date().toISOString();
    const orgId = newId();
    await db
      .insertInto('organizations')
      .values({ id: orgId, name: 'Shared', created_by: null, created_at: at, updated_at: at })
      .execute();
    await db
      .insertInto('memberships')
      .values({ org_id: orgId, user_id: userId, role: 'viewer', created_at: at, updated_at: at })
      .execute();
    await one.app.bastion.identity.memberships.changed();
    const url = PROBE.replace(':org', orgId);
    await within(1000, async () => (await status(two.app, tokens.access_token, url)) === 200);
    await db.deleteFrom('memberships').where('org_id', '=', orgId).execute();
    await one.app.bastion.identity.memberships.changed();
    await within(1000, async () => (await status(two.app, tokens.access_token, url)) === 404);
  });

  it('a signing key rotated on instance 1 is accepted on instance 2 for its new tokens', async () => {
    const kid = await one.app.bastion.identity.signingKeys.rotate();
    const tokens = await login(one.app, 'roamer@example.test', STRONG_PASSWORD);
    expect(JSON.parse(Buffer.from(tokens.access_token.split('.')[0]!, 'base64url').toString()).kid).toBe(kid);
    await within(1000, async () => (await status(two.app, tokens.access_token)) === 200);
    // Tokens of the replaced key still work on both while they live.
    expect(await status(two.app, adminToken)).toBe(200);
  });

  it('neither instance logged a server error through all of this', () => {
    for (const instance of [one, two]) {
      const errors = instance.logs.lines.filter((line) => (line.level as number) >= 50);
      expect(errors.map((line) => line.msg)).toEqual([]);
    }
  });
});
