import type { LightMyRequestResponse } from 'fastify';
import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.ts';
import type { TestApp } from './support/app.ts';
import {
  ADMIN,
  call,
  createUser,
  login,
  STRONG_PASSWORD,
  startIdentityApp,
  type Tokens,
} from './support/identity.ts';

/** An address the account's owner never logged in from. */
const ATTACKER_IP = '203.0.113.66';

const STEP_MS = 30_000;
const NEW_PASSWORD = 'Copper-Willow-Sextant-884';

interface Enrolled {
  id: string;
  email: string;
  secret: string;
  backupCodes: string[];
  /** The session MFA was enabled from (still live). */
  tokens: Tokens;
}

describe('MFA through HTTP', () => {
  const clock = new ManualClock(Date.now());
  let t: TestApp;
  let serial = 0;

  /** The TOTP code of the current time step (or a neighbouring one). */
  function totp(secret: string, steps = 0): string {
    return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({
      timestamp: clock.now() + steps * STEP_MS,
    });
  }

  /** A six-digit code that is valid in no accepted step right now. */
  function wrongCode(secret: string): string {
    const valid = new Set([-1, 0, 1].map((steps) => totp(secret, steps)));
    for (let n = 123_456; ; n++) {
      const code = String(n % 1_000_000).padStart(6, '0');
      if (!valid.has(code)) return code;
    }
  }

  /** Moves to the next time step, so a fresh code exists (each step is usable once). */
  function nextStep(): void {
    clock.advance(STEP_MS);
  }

  function post(url: string, payload: unknown, token?: string, ip?: string): Promise<LightMyRequestResponse> {
    if (ip === undefined) return call(t.app, token ?? null, 'POST', url, payload);
    return t.app.inject({
      method: 'POST',
      url,
      payload: payload as Record<string, unknown>,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      remoteAddress: ip,
    });
  }

  /** A fresh admin token (the manual clock runs past the access-token lifetime). */
  async function admin(): Promise<string> {
    return (await login(t.app, ADMIN.email, ADMIN.password)).access_token;
  }

  async function newUser(): Promise<{ id: string; email: string }> {
    serial += 1;
    const email = `mfa-user-${serial}@example.test`;
    return { id: await createUser(t.app, await admin(), email), email };
  }

  async function enrol(): Promise<Enrolled> {
    const { id, email } = await newUser();
    const tokens = await login(t.app, email, STRONG_PASSWORD);
    const setup = await post('/auth/mfa/totp/setup', { password: STRONG_PASSWORD }, tokens.access_token);
    expect(setup.statusCode).toBe(200);
    const { secret } = setup.json() as { secret: string };
    const enable = await post('/auth/mfa/totp/enable', { code: totp(secret) }, tokens.access_token);
    expect(enable.statusCode).toBe(200);
    nextStep();
    return {
      id,
      email,
      secret,
      backupCodes: (enable.json() as { backup_codes: string[] }).backup_codes,
      tokens,
    };
  }

  async function passwordStep(email: string, password = STRONG_PASSWORD, ip?: string): Promise<string> {
    const response = await post('/auth/login', { email, password }, undefined, ip);
    expect(response.statusCode).toBe(200);
    const body = response.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['mfa_required', 'mfa_token']);
    expect(body.mfa_required).toBe(true);
    return body.mfa_token as string;
  }

  function verify(mfaToken: string, code: string, ip?: string): Promise<LightMyRequestResponse> {
    return post('/auth/mfa/verify', { mfa_token: mfaToken, code }, undefined, ip);
  }

  async function me(token: string): Promise<number> {
    return (await call(t.app, token, 'GET', '/auth/me')).statusCode;
  }

  beforeAll(async () => {
    t = await startIdentityApp({
      clock,
      configure: (config) => {
        config.loadShedding.enabled = false;
        // Many deliberate failures from one test IP: only the per-account limits are under test here.
        config.identity.lockout.ipFailures = 10_000;
        config.identity.mfaTokenTtlSeconds = 300;
      },
    });
  });

  afterAll(async () => {
    await t?.close();
  });

  describe('set-up', () => {
    it('always needs the password, even right after login (a stolen token cannot enrol MFA)', async () => {
      const { email } = await newUser();
      const tokens = await login(t.app, email, STRONG_PASSWORD);
      for (const body of [undefined, {}]) {
        const stale = await post('/auth/mfa/totp/setup', body, tokens.access_token);
        expect(stale.statusCode).toBe(403);
        expect(stale.json().error).toBe('reauthentication_required');
      }
      const wrong = await post('/auth/mfa/totp/setup', { password: 'not-my-password' }, tokens.access_token);
      expect(wrong.statusCode).toBe(403);
      const ok = await post('/auth/mfa/totp/setup', { password: STRONG_PASSWORD }, tokens.access_token);
      expect(ok.statusCode).toBe(200);
      const { secret, otpauth_url: url } = ok.json() as { secret: string; otpauth_url: string };
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(url).toMatch(/^otpauth:\/\/totp\//);
      expect(new URL(url).searchParams.get('secret')).toBe(secret);
      expect(ok.headers['cache-control']).toBe('no-store');

      // Nor does a fresh login do without it.
      const fresh = await login(t.app, email, STRONG_PASSWORD);
      expect((await post('/auth/mfa/totp/setup', undefined, fresh.access_token)).statusCode).toBe(403);
    });

    it('needs a valid token, and refuses unknown fields', async () => {
      expect((await post('/auth/mfa/totp/setup', {})).statusCode).toBe(401);
      const { email } = await newUser();
      const tokens = await login(t.app, email, STRONG_PASSWORD);
      const extra = await post('/auth/mfa/totp/setup', { secret: 'JBSWY3DPEHPK3PXP' }, tokens.access_token);
      expect(extra.statusCode).toBe(400);
    });

    it('enable refuses a wrong code, then returns 10 backup codes once for the right one', async () => {
      const { email } = await newUser();
      const tokens = await login(t.app, email, STRONG_PASSWORD);
      const { secret } = (
        await post('/auth/mfa/totp/setup', { password: STRONG_PASSWORD }, tokens.access_token)
      ).json() as {
        secret: string;
      };
      const wrong = await post('/auth/mfa/totp/enable', { code: wrongCode(secret) }, tokens.access_token);
      expect(wrong.statusCode).toBe(400);
      expect((await call(t.app, tokens.access_token, 'GET', '/auth/me')).json().mfa_enabled).toBe(false);

      const enable = await post('/auth/mfa/totp/enable', { code: totp(secret) }, tokens.access_token);
      expect(enable.statusCode).toBe(200);
      const codes = (enable.json() as { backup_codes: string[] }).backup_codes;
      expect(codes).toHaveLength(10);
      expect(new Set(codes).size).toBe(10);
      for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{5}-[0-9A-Z]{5}$/);
      expect((await call(t.app, tokens.access_token, 'GET', '/auth/me')).json().mfa_enabled).toBe(true);

      // Enabling again, or restarting set-up, is refused while MFA is on.
      nextStep();
      expect(
        (await post('/auth/mfa/totp/enable', { code: totp(secret) }, tokens.access_token)).statusCode,
      ).toBe(409);
    });
  });

  describe('login with MFA', () => {
    it('the password alone gives an mfa_token and no tokens; a TOTP code completes the login', async () => {
      const user = await enrol();
      const response = await post('/auth/login', { email: user.email, password: STRONG_PASSWORD });
      expect(response.statusCode).toBe(200);
      expect(response.body).not.toContain('access_token');
      expect(response.body).not.toContain('refresh_token');
      const mfaToken = (response.json() as { mfa_token: string }).mfa_token;
      // The mfa_token is no access token.
      expect(await me(mfaToken)).toBe(401);

      const verified = await verify(mfaToken, totp(user.secret));
      expect(verified.statusCode).toBe(200);
      const tokens = verified.json() as Tokens;
      expect(tokens.token_type).toBe('Bearer');
      expect(await me(tokens.access_token)).toBe(200);
      const sessions = (await call(t.app, tokens.access_token, 'GET', '/auth/sessions')).json() as {
        items: Array<{ current: boolean; mfa: boolean }>;
      };
      expect(sessions.items.find((session) => session.current)?.mfa).toBe(true);
    });

    it('the same TOTP code cannot be used twice (replay in a new login)', async () => {
      const user = await enrol();
      const code = totp(user.secret);
      expect((await verify(await passwordStep(user.email), code)).statusCode).toBe(200);
      const replay = await verify(await passwordStep(user.email), code);
      expect(replay.statusCode).toBe(401);
      expect(replay.json().error).toBe('invalid_mfa');
      // Nor an older one after a newer one was used.
      expect((await verify(await passwordStep(user.email), totp(user.secret, -1))).statusCode).toBe(401);
      nextStep();
      expect((await verify(await passwordStep(user.email), totp(user.secret))).statusCode).toBe(200);
    });

    it('a backup code works once (formatted or not)', async () => {
      const user = await enrol();
      const [first, second] = user.backupCodes as [string, string];
      expect((await verify(await passwordStep(user.email), first)).statusCode).toBe(200);
      expect((await verify(await passwordStep(user.email), first)).statusCode).toBe(401);
      const loose = second.replace('-', '').toLowerCase();
      expect((await verify(await passwordStep(user.email), loose)).statusCode).toBe(200);
      expect((await verify(await passwordStep(user.email), second)).statusCode).toBe(401);
      // Another user's backup code is worth nothing here.
      const other = await enrol();
      expect((await verify(await passwordStep(user.email), other.backupCodes[0]!)).statusCode).toBe(401);
    });

    it('five wrong codes kill the mfa_token: the right code is then refused', async () => {
      const user = await enrol();
      const mfaToken = await passwordStep(user.email);
      for (let i = 0; i < 5; i++) {
        const response = await verify(mfaToken, wrongCode(user.secret));
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('invalid_mfa');
      }
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(401);
      expect((await verify(mfaToken, user.backupCodes[0]!)).statusCode).toBe(401);
    });

    it('an mfa_token is single use', async () => {
      const user = await enrol();
      const mfaToken = await passwordStep(user.email);
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(200);
      nextStep();
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(401);
      expect((await verify(mfaToken, user.backupCodes[0]!)).statusCode).toBe(401);
    });

    it('the same code on two mfa_tokens at once: exactly one login', async () => {
      const user = await enrol();
      const tokens = [await passwordStep(user.email), await passwordStep(user.email)];
      const code = totp(user.secret);
      const answers = await Promise.all(tokens.map((token) => verify(token, code)));
      expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 401]);
    });

    it('two valid codes on one mfa_token at once: exactly one login', async () => {
      const user = await enrol();
      const mfaToken = await passwordStep(user.email);
      const answers = await Promise.all([
        verify(mfaToken, totp(user.secret)),
        verify(mfaToken, user.backupCodes[0]!),
      ]);
      expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 401]);
    });

    it('an mfa_token expires; garbage tokens and codes are refused without 500', async () => {
      const user = await enrol();
      const mfaToken = await passwordStep(user.email);
      clock.advance(301_000);
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(401);
      for (const [token, code] of [
        ['x', '123456'],
        [mfaToken.toUpperCase(), totp(user.secret)],
      ] as const) {
        expect((await verify(token, code)).statusCode).toBe(401);
      }
      // SQL in the token never reaches identity: attack detection refuses it first.
      expect((await verify("' OR 1=1 --", '000000')).statusCode).toBe(403);
      for (const payload of [
        { mfa_token: 'x'.repeat(500), code: '123456' },
        { mfa_token: mfaToken, code: '1'.repeat(100) },
        { mfa_token: mfaToken },
        { mfa_token: mfaToken, code: '123456', user_id: user.id },
      ]) {
        expect((await post('/auth/mfa/verify', payload)).statusCode).toBe(400);
      }
    });

    it('a disabled account cannot finish an MFA login it started', async () => {
      const user = await enrol();
      const mfaToken = await passwordStep(user.email);
      const disable = await call(t.app, await admin(), 'PUT', `/api/v1/admin/users/${user.id}`, {
        status: 'disabled',
      });
      expect(disable.statusCode).toBe(200);
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(401);
    });
  });

  describe('guessing codes is bounded by the account lock', () => {
    it('a correct password between guesses does not reset the failure count', async () => {
      const user = await enrol();
      // The attacker knows the password and guesses codes from an address the owner never used.
      // Every attempt counts (5 in a run lock the account): a password step, two wrong codes, a
      // fresh password step, one more wrong code. Had the password step ended the run, the
      // guessing would never reach the lock.
      for (const wrong of [2, 1]) {
        const mfaToken = await passwordStep(user.email, STRONG_PASSWORD, ATTACKER_IP);
        for (let i = 0; i < wrong; i++)
          expect((await verify(mfaToken, wrongCode(user.secret), ATTACKER_IP)).statusCode).toBe(401);
      }
      const locked = await post(
        '/auth/login',
        { email: user.email, password: STRONG_PASSWORD },
        undefined,
        ATTACKER_IP,
      );
      expect(locked.statusCode).toBe(401);
      expect(locked.json().error).toBe('invalid_credentials');
      const events = await t.app.bastion.identity.audit.listForActor(user.id);
      expect(events.some((event) => event.action === 'auth.account_locked')).toBe(true);
    });

    it('mfa_tokens taken before the lock cannot keep guessing once the account is locked', async () => {
      const user = await enrol();
      const tokens = [
        await passwordStep(user.email, STRONG_PASSWORD, ATTACKER_IP),
        await passwordStep(user.email, STRONG_PASSWORD, ATTACKER_IP),
      ];
      for (let i = 0; i < 5; i++) await verify(tokens[0]!, wrongCode(user.secret), ATTACKER_IP);
      // Locked now (for 60 s): even the right code on a spare token is refused.
      const refused = await verify(tokens[1]!, totp(user.secret), ATTACKER_IP);
      expect(refused.statusCode).toBe(401);
      // The owner, from the address they logged in from before (a known device), is not locked out.
      const owner = await verify(await passwordStep(user.email), totp(user.secret));
      expect(owner.statusCode).toBe(200);
      nextStep();
      // Once the lock is over, anyone with both factors gets in again.
      clock.advance(61_000);
      const mfaToken = await passwordStep(user.email);
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(200);
    });

    it('a successful MFA login clears the failures', async () => {
      const user = await enrol();
      let mfaToken = await passwordStep(user.email);
      for (let i = 0; i < 4; i++) await verify(mfaToken, wrongCode(user.secret));
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(200);
      nextStep();
      mfaToken = await passwordStep(user.email);
      for (let i = 0; i < 4; i++) await verify(mfaToken, wrongCode(user.secret));
      expect((await verify(mfaToken, totp(user.secret))).statusCode).toBe(200);
    });
  });

  describe('changing password and MFA', () => {
    it('a password change needs the code when MFA is on, and ends the other sessions', async () => {
      const user = await enrol();
      const mine = user.tokens;
      const other = (await verify(await passwordStep(user.email), totp(user.secret))).json() as Tokens;
      nextStep();
      const change = (body: Record<string, unknown>) => post('/auth/password', body, mine.access_token);

      const noCode = await change({ current_password: STRONG_PASSWORD, new_password: NEW_PASSWORD });
      expect(noCode.statusCode).toBe(403);
      expect(noCode.json().error).toBe('reauthentication_required');
      const wrong = await change({
        current_password: STRONG_PASSWORD,
        new_password: NEW_PASSWORD,
        code: wrongCode(user.secret),
      });
      expect(wrong.statusCode).toBe(403);
      const wrongPassword = await change({
        current_password: NEW_PASSWORD,
        new_password: NEW_PASSWORD,
        code: totp(user.secret),
      });
      expect(wrongPassword.statusCode).toBe(403);
      expect(await me(other.access_token)).toBe(200);
      nextStep();

      const ok = await change({
        current_password: STRONG_PASSWORD,
        new_password: NEW_PASSWORD,
        code: totp(user.secret),
      });
      expect(ok.statusCode).toBe(204);
      expect(await me(mine.access_token)).toBe(200);
      expect(await me(other.access_token)).toBe(401);
      expect((await post('/auth/refresh', { refresh_token: other.refresh_token })).statusCode).toBe(401);
      expect((await post('/auth/login', { email: user.email, password: STRONG_PASSWORD })).statusCode).toBe(
        401,
      );
      await passwordStep(user.email, NEW_PASSWORD);
    });

    it('disabling MFA needs the password and a code, and ends the other sessions', async () => {
      const user = await enrol();
      const mine = user.tokens;
      const other = (await verify(await passwordStep(user.email), totp(user.secret))).json() as Tokens;
      nextStep();
      const disable = (body: Record<string, unknown>) => post('/auth/mfa/disable', body, mine.access_token);

      expect((await disable({ password: STRONG_PASSWORD })).statusCode).toBe(400);
      expect((await disable({ password: STRONG_PASSWORD, code: wrongCode(user.secret) })).statusCode).toBe(
        403,
      );
      expect((await disable({ password: 'Wrong-Password-000', code: totp(user.secret) })).statusCode).toBe(
        403,
      );
      expect(await me(other.access_token)).toBe(200);
      nextStep();

      expect((await disable({ password: STRONG_PASSWORD, code: totp(user.secret) })).statusCode).toBe(204);
      expect(await me(mine.access_token)).toBe(200);
      expect(await me(other.access_token)).toBe(401);
      const plain = await post('/auth/login', { email: user.email, password: STRONG_PASSWORD });
      expect(plain.statusCode).toBe(200);
      expect(plain.json()).toHaveProperty('access_token');
      const rows = await t.app.bastion.database.db
        .selectFrom('mfa_backup_codes')
        .select('user_id')
        .where('user_id', '=', user.id)
        .execute();
      expect(rows).toHaveLength(0);
    });

    it('new backup codes need the password and a code, and replace the old ones', async () => {
      const user = await enrol();
      const regenerate = (body: Record<string, unknown>) =>
        post('/auth/mfa/backup-codes', body, user.tokens.access_token);
      expect((await regenerate({ password: STRONG_PASSWORD, code: wrongCode(user.secret) })).statusCode).toBe(
        403,
      );
      const response = await regenerate({ password: STRONG_PASSWORD, code: totp(user.secret) });
      expect(response.statusCode).toBe(200);
      nextStep();
      const fresh = (response.json() as { backup_codes: string[] }).backup_codes;
      expect(fresh).toHaveLength(10);
      expect((await verify(await passwordStep(user.email), user.backupCodes[1]!)).statusCode).toBe(401);
      expect((await verify(await passwordStep(user.email), fresh[0]!)).statusCode).toBe(200);
    });

    it('an e-mail change needs the code when MFA is on', async () => {
      const user = await enrol();
      const change = (body: Record<string, unknown>) => post('/auth/email', body, user.tokens.access_token);
      const newEmail = `moved-${user.email}`;
      expect((await change({ new_email: newEmail, password: STRONG_PASSWORD })).statusCode).toBe(403);
      expect(
        (await change({ new_email: newEmail, password: STRONG_PASSWORD, code: wrongCode(user.secret) }))
          .statusCode,
      ).toBe(403);
      const ok = await change({ new_email: newEmail, password: STRONG_PASSWORD, code: totp(user.secret) });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().email).toBe(newEmail);
      nextStep();
    });

    it('enabling MFA ends the other sessions, not the one that enabled it', async () => {
      const { email } = await newUser();
      const mine = await login(t.app, email, STRONG_PASSWORD);
      const other = await login(t.app, email, STRONG_PASSWORD);
      const { secret } = (
        await post('/auth/mfa/totp/setup', { password: STRONG_PASSWORD }, mine.access_token)
      ).json() as {
        secret: string;
      };
      expect(await me(other.access_token)).toBe(200);
      expect(
        (await post('/auth/mfa/totp/enable', { code: totp(secret) }, mine.access_token)).statusCode,
      ).toBe(200);
      expect(await me(mine.access_token)).toBe(200);
      expect(await me(other.access_token)).toBe(401);
      expect((await post('/auth/refresh', { refresh_token: other.refresh_token })).statusCode).toBe(401);
      nextStep();
    });

    it('an API key cannot manage MFA or the password (user routes only)', async () => {
      // No API keys here; a bst_ token that does not exist must still be 401, not reach the service.
      expect(
        (await post('/auth/mfa/disable', { password: 'x', code: '123456' }, 'bst_fake')).statusCode,
      ).toBe(401);
    });
  });

  describe('at rest', () => {
    it('the TOTP secret and the backup codes are not stored in clear', async () => {
      const user = await enrol();
      const db = t.app.bastion.database.db;
      const mfaRow = await db
        .selectFrom('user_mfa')
        .selectAll()
        .where('user_id', '=', user.id)
        .executeTakeFirstOrThrow();
      const codes = await db
        .selectFrom('mfa_backup_codes')
        .selectAll()
        .where('user_id', '=', user.id)
        .execute();
      const userRow = await db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', user.id)
        .executeTakeFirstOrThrow();
      const stored = JSON.stringify({ mfaRow, codes, userRow });
      const rawSecret = Buffer.from(OTPAuth.Secret.fromBase32(user.secret).buffer);
      for (const form of [
        user.secret,
        user.secret.toLowerCase(),
        rawSecret.toString('hex'),
        rawSecret.toString('base64'),
        rawSecret.toString('base64url'),
      ]) {
        expect(stored).not.toContain(form);
      }
      expect(mfaRow.state).toBe('enabled');
      expect(codes).toHaveLength(10);
      for (const code of user.backupCodes) {
        expect(stored).not.toContain(code);
        expect(stored).not.toContain(code.replace('-', ''));
      }
      // Not in the logs either.
      expect(t.logs.text).not.toContain(user.secret);
      for (const code of user.backupCodes) expect(t.logs.text).not.toContain(code.replace('-', ''));
    });
  });
});
