import type { LightMyRequestResponse } from 'fastify';
import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import type { TestApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import {
  ADMIN,
  bearer,
  call,
  createUser,
  login,
  STRONG_PASSWORD,
  startIdentityApp,
} from './support/identity.ts';

/**
 * Attacks found in review of the identity capability, each shown to fail: parallel bursts past
 * the lockout, locking the owner out for good, another organization reading a member's login
 * history, keys outliving their maker, tokens outliving their session, old signing keys lingering.
 */
const ATTACKER_IP = '203.0.113.77';

function loginFrom(t: TestApp, email: string, password: string, ip: string): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email, password },
    remoteAddress: ip,
  });
}

describe('identity hardening', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
  let t: TestApp;
  let adminToken: string;

  beforeAll(async () => {
    t = await startIdentityApp({
      clock,
      configure: (config) => {
        config.identity.lockout.ipFailures = 10_000;
        config.identity.lockout.accountIpFailures = 1000;
        config.identity.sessionAbsoluteTimeoutSeconds = 600;
      },
    });
  });
  afterAll(async () => t?.close());

  async function admin(): Promise<string> {
    adminToken = (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
    return adminToken;
  }

  it('a parallel burst of guesses is counted like a sequence: the right password in it fails too', async () => {
    await createUser(t.app, await admin(), 'burst@example.test');
    const guesses = Array.from({ length: 30 }, (_, i) =>
      loginFrom(t, 'burst@example.test', i === 29 ? STRONG_PASSWORD : `wrong-guess-${i}`, ATTACKER_IP),
    );
    const answers = await Promise.all(guesses);
    expect(answers.map((answer) => answer.statusCode).filter((status) => status === 200)).toEqual([]);
    const locks = await t.app.bastion.database.db
      .selectFrom('audit_events')
      .select('id')
      .where('action', '=', 'auth.account_locked')
      .execute();
    expect(locks.length).toBe(1);
  });

  it('an attacker who keeps re-locking an account never locks its owner out of a known device', async () => {
    await createUser(t.app, await admin(), 'victim@example.test');
    // The owner has logged in from home before.
    expect((await loginFrom(t, 'victim@example.test', STRONG_PASSWORD, '192.0.2.10')).statusCode).toBe(200);
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++)
        await loginFrom(t, 'victim@example.test', `nope-${round}-${i}`, ATTACKER_IP);
      // Locked for everyone else, the right password included…
      expect((await loginFrom(t, 'victim@example.test', STRONG_PASSWORD, '198.51.100.99')).statusCode).toBe(
        401,
      );
      // …but not for the owner at home.
      expect((await loginFrom(t, 'victim@example.test', STRONG_PASSWORD, '192.0.2.10')).statusCode).toBe(200);
      // Guesses made during the lock neither count nor extend it.
      for (let i = 0; i < 20; i++)
        await loginFrom(t, 'victim@example.test', `more-${round}-${i}`, ATTACKER_IP);
      clock.advance(15 * 60_000 + 1);
      expect((await loginFrom(t, 'victim@example.test', STRONG_PASSWORD, '198.51.100.98')).statusCode).toBe(
        200,
      );
      await admin();
    }
  });

  it("an organization cannot read a member's account-level authentication events", async () => {
    const token = await admin();
    const victimId = await createUser(t.app, token, 'private@example.test');
    await loginFrom(t, 'private@example.test', 'a-wrong-password', '203.0.113.5');
    await login(t.app, 'private@example.test', STRONG_PASSWORD);
    await createUser(t.app, token, 'snoop@example.test');
    const snoop = await login(t.app, 'snoop@example.test', STRONG_PASSWORD);
    const org = (
      await call(t.app, snoop.access_token, 'POST', '/api/v1/organizations', { name: 'Snoop' })
    ).json() as {
      id: string;
    };
    const added = await call(t.app, snoop.access_token, 'POST', `/api/v1/organizations/${org.id}/members`, {
      email: 'private@example.test',
      role: 'viewer',
    });
    expect(added.statusCode).toBe(201);
    const events = await call(
      t.app,
      snoop.access_token,
      'GET',
      `/api/v1/organizations/${org.id}/audit-events`,
    );
    expect(events.statusCode).toBe(200);
    const items = (events.json() as { items: Array<{ actor: { id: string | null }; org_id: string | null }> })
      .items;
    expect(items.filter((event) => event.actor.id === victimId && event.org_id === null)).toEqual([]);
    expect(events.body).not.toContain('203.0.113.5');
    // The user sees their own; the platform admin sees everything.
    const mine = await call(
      t.app,
      (await login(t.app, 'private@example.test', STRONG_PASSWORD)).access_token,
      'GET',
      '/auth/events',
    );
    expect(mine.statusCode).toBe(200);
    expect(mine.body).toContain('auth.login_failed');
    expect(mine.body).toContain('203.0.113.5');
    const all = await call(
      t.app,
      await admin(),
      'GET',
      '/api/v1/admin/audit-events?action=auth.login_failed',
    );
    expect(all.body).toContain('203.0.113.5');
    expect((await call(t.app, snoop.access_token, 'GET', '/api/v1/admin/audit-events')).statusCode).toBe(403);
  });

  it('an API key stops working when its maker is disabled or deleted', async () => {
    const token = await admin();
    const makers = [
      {
        email: 'maker1@example.test',
        remove: (id: string) =>
          call(t.app, adminToken, 'PUT', `/api/v1/admin/users/${id}`, { status: 'disabled' }),
      },
      {
        email: 'maker2@example.test',
        remove: (id: string) => call(t.app, adminToken, 'DELETE', `/api/v1/admin/users/${id}`),
      },
    ];
    for (const maker of makers) {
      const id = await createUser(t.app, token, maker.email);
      const own = await login(t.app, maker.email, STRONG_PASSWORD);
      const org = (
        await call(t.app, own.access_token, 'POST', '/api/v1/organizations', { name: maker.email })
      ).json() as {
        id: string;
      };
      const key = (
        await call(t.app, own.access_token, 'POST', `/api/v1/organizations/${org.id}/api-keys`, {
          name: 'ci',
          permissions: ['workflows:read'],
        })
      ).json() as { token: string };
      const use = () =>
        t.app.inject({
          url: `/api/v1/organizations/${org.id}/workflows`,
          headers: { 'x-api-key': key.token },
        });
      expect((await use()).statusCode).toBe(200);
      expect([200, 204]).toContain((await maker.remove(id)).statusCode);
      expect((await use()).statusCode).toBe(401);
    }
  });

  it('no access token outlives its session', async () => {
    await createUser(t.app, await admin(), 'short@example.test');
    const tokens = await login(t.app, 'short@example.test', STRONG_PASSWORD);
    // 600 s absolute timeout: refresh 2 minutes before the end; the new token ends with the session.
    clock.advance(480_000);
    const refreshed = await call(t.app, null, 'POST', '/auth/refresh', {
      refresh_token: tokens.refresh_token,
    });
    expect(refreshed.statusCode).toBe(200);
    const pair = refreshed.json() as { access_token: string; expires_in: number };
    expect(pair.expires_in).toBeLessThanOrEqual(120);
    // Past the session's end (and the 5 s clock-skew tolerance), the token is refused.
    clock.advance(126_000);
    expect((await t.app.inject({ url: '/auth/me', headers: bearer(pair.access_token) })).statusCode).toBe(
      401,
    );
  });

  it('a replaced signing key is retired once its tokens have expired', async () => {
    const keys = t.app.bastion.identity.signingKeys;
    const old = keys.active.id;
    const oldToken = await login(t.app, ADMIN.email, ADMIN.password);
    await keys.rotate();
    expect(JSON.parse(keys.jwks).keys.map((key: { kid: string }) => key.kid)).toContain(old);
    expect((await t.app.inject({ url: '/auth/me', headers: bearer(oldToken.access_token) })).statusCode).toBe(
      200,
    );
    clock.advance(16 * 60_000 + 1);
    await keys.maintain();
    expect(JSON.parse(keys.jwks).keys.map((key: { kid: string }) => key.kid)).not.toContain(old);
    const row = await t.app.bastion.database.db
      .selectFrom('signing_keys')
      .select('state')
      .where('id', '=', old)
      .executeTakeFirstOrThrow();
    expect(row.state).toBe('retired');
  });
});

describe('the per-IP budget counts failures, not logins', () => {
  it('an address with many successful MFA logins is never throttled', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
    const t = await startIdentityApp({
      clock,
      configure: (config) => {
        config.identity.lockout.ipFailures = 3;
        config.identity.lockout.accountIpFailures = 3;
      },
    });
    try {
      await createUser(
        t.app,
        (await login(t.app, ADMIN.email, ADMIN.password)).access_token,
        'office@example.test',
      );
      const first = await login(t.app, 'office@example.test', STRONG_PASSWORD);
      const setup = await call(t.app, first.access_token, 'POST', '/auth/mfa/totp/setup', {
        password: STRONG_PASSWORD,
      });
      const totp = new OTPAuth.TOTP({
        secret: OTPAuth.Secret.fromBase32((setup.json() as { secret: string }).secret),
      });
      const code = () => totp.generate({ timestamp: clock.now() });
      expect(
        (await call(t.app, first.access_token, 'POST', '/auth/mfa/totp/enable', { code: code() })).statusCode,
      ).toBe(200);
      for (let i = 0; i < 8; i++) {
        clock.advance(30_000);
        const step = await loginFrom(t, 'office@example.test', STRONG_PASSWORD, '192.0.2.50');
        expect(step.statusCode, `login ${i}`).toBe(200);
        const { mfa_token: mfaToken } = step.json() as { mfa_token: string };
        const verified = await t.app.inject({
          method: 'POST',
          url: '/auth/mfa/verify',
          payload: { mfa_token: mfaToken, code: code() },
          remoteAddress: '192.0.2.50',
        });
        expect(verified.statusCode, `verify ${i}`).toBe(200);
      }
    } finally {
      await t.close();
    }
  });
});

describe('bastion keys rotate-signing', () => {
  it('rotates now and, with --retire-previous, retires every older key', { timeout: 120_000 }, async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dataDir = await mkdtemp(path.join(tmpdir(), 'bastion-signing-'));
    const env = { BASTION_DATA_DIR: dataDir, BASTION_LOG_FORMAT: 'json' };
    try {
      expect((await runCli(['migrate', 'up'], env)).code).toBe(0);
      const first = await runCli(['keys', 'rotate-signing'], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/Rotated the access-token signing key: [0-9a-f]{28} is active/);
      const second = await runCli(['keys', 'rotate-signing', '--retire-previous'], env);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toMatch(/Retired [1-9]\d* previous key/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
