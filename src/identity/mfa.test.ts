import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as OTPAuth from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresSchema } from '../../test/support/app.ts';
import { DATABASE_URL_TEST, postgresAvailable } from '../../test/support/services.ts';
import { ManualClock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import { FieldCipher } from '../data-protection/field-cipher.ts';
import { Keyring } from '../data-protection/keyring.ts';
import { type Database, openDatabase } from '../storage/database.ts';
import { migrateUp } from '../storage/migrator.ts';
import { MfaService } from './mfa.ts';

const pgUp = await postgresAvailable();
const STEP = 30_000;
const BACKUP_FORMAT = /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/;

function rejection(code: string, status: number) {
  return { name: 'BastionError', code, statusCode: status };
}

const INVALID_CODE = rejection('BASTION_ERR_MFA_INVALID_CODE', 400);
const NOT_PENDING = rejection('BASTION_ERR_MFA_NOT_PENDING', 409);
const ALREADY_ENABLED = rejection('BASTION_ERR_MFA_ALREADY_ENABLED', 409);
const NOT_ENABLED = rejection('BASTION_ERR_MFA_NOT_ENABLED', 409);

describe('MfaService options', () => {
  it('refuses a backup-code key that is not 32 bytes, at construction', () => {
    for (const backupCodeKey of [Buffer.alloc(16), Buffer.alloc(33), 'x'.repeat(32) as unknown as Buffer]) {
      expect(
        () =>
          new MfaService({
            db: {} as Database['db'],
            cipher: {} as FieldCipher,
            clock: new ManualClock(),
            backupCodeKey,
            issuer: 'Bastion',
          }),
      ).toThrow(TypeError);
    }
  });
});

describe.each([
  { backend: 'sqlite' as const, skip: false },
  { backend: 'postgres' as const, skip: !pgUp },
])('MfaService on $backend', ({ backend, skip }) => {
  let database: Database;
  let keyring: Keyring;
  let clock: ManualClock;
  let mfa: MfaService;
  let userId: string;
  let dir: string | null = null;

  async function createUser(): Promise<string> {
    const now = new Date(clock.now()).toISOString();
    const id = newId(clock.now());
    await database.db
      .insertInto('users')
      .values({
        id,
        email: `${id}@example.com`,
        email_index: randomBytes(16).toString('hex'),
        name: null,
        password_hash: 'not-a-real-hash',
        platform_admin: 0,
        status: 'active',
        mfa_enabled: 0,
        password_changed_at: now,
        last_login_at: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    return id;
  }

  /** The code of the step `offset` steps from the clock's current one. */
  function totp(secret: string, offset = 0): string {
    return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({
      timestamp: clock.now() + offset * STEP,
    });
  }

  /** Enrols the user, then moves ten steps on, so the confirming code is long past. */
  async function enrol(id = userId): Promise<{ secret: string; backupCodes: string[] }> {
    const { secret } = await mfa.setup(id, 'alice@example.com');
    const { backupCodes } = await mfa.enable(id, totp(secret));
    clock.advance(10 * STEP);
    return { secret, backupCodes };
  }

  async function mfaRow(id = userId) {
    return database.db.selectFrom('user_mfa').selectAll().where('user_id', '=', id).executeTakeFirst();
  }

  async function mfaEnabledFlag(id = userId): Promise<number> {
    const row = await database.db
      .selectFrom('users')
      .select('mfa_enabled')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return Number(row.mfa_enabled);
  }

  beforeEach(async (context) => {
    if (skip) return context.skip();
    // Half-way through a step, so ±1 step is unambiguous.
    clock = new ManualClock(Date.UTC(2026, 0, 1) + STEP / 2);
    if (backend === 'sqlite') {
      dir = await mkdtemp(path.join(os.tmpdir(), 'bastion-mfa-'));
      database = openDatabase({ url: `sqlite:${path.join(dir, 'mfa.db')}` });
    } else {
      const { schema } = await createPostgresSchema();
      database = openDatabase({ url: DATABASE_URL_TEST, schema });
    }
    await migrateUp(database);
    keyring = await Keyring.open({ db: database.db, masterKey: randomBytes(32), clock });
    mfa = new MfaService({
      db: database.db,
      cipher: new FieldCipher(keyring),
      clock,
      backupCodeKey: randomBytes(32),
      issuer: 'Bastion',
    });
    userId = await createUser();
  });

  afterEach(async () => {
    await keyring?.close();
    await database?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it('sets up a pending 160-bit secret, stored encrypted, with an otpauth URL for the app', async () => {
    const { secret, otpauthUrl } = await mfa.setup(userId, 'alice@example.com');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(OTPAuth.Secret.fromBase32(secret).bytes).toHaveLength(20);

    const url = new URL(otpauthUrl);
    expect(url.protocol).toBe('otpauth:');
    expect(url.host).toBe('totp');
    expect(decodeURIComponent(url.pathname)).toBe('/Bastion:alice@example.com');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      issuer: 'Bastion',
      secret,
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });

    const row = await mfaRow();
    expect(row).toMatchObject({ state: 'pending', last_used_step: null, enabled_at: null });
    expect(row?.totp_secret).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(await mfaEnabledFlag()).toBe(0);
    // Pending is not enabled: no code passes verify yet.
    expect(await mfa.verify(userId, totp(secret))).toBeNull();
  });

  it('restarting set-up replaces the pending secret', async () => {
    const first = await mfa.setup(userId, 'alice@example.com');
    const second = await mfa.setup(userId, 'alice@example.com');
    expect(second.secret).not.toBe(first.secret);
    await expect(mfa.enable(userId, totp(first.secret))).rejects.toMatchObject(INVALID_CODE);
    expect((await mfa.enable(userId, totp(second.secret))).backupCodes).toHaveLength(10);
  });

  it('refuses set-up for an unknown user (404)', async () => {
    await expect(mfa.setup(newId(), 'ghost@example.com')).rejects.toMatchObject(
      rejection('BASTION_ERR_USER_NOT_FOUND', 404),
    );
  });

  it('enable refuses a wrong or malformed code (400) and needs a pending set-up (409)', async () => {
    await expect(mfa.enable(userId, '123456')).rejects.toMatchObject(NOT_PENDING);
    const { secret } = await mfa.setup(userId, 'alice@example.com');
    const right = totp(secret);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    for (const bad of [wrong, totp(secret, 2), right.slice(1), `${right}0`, 'abcdef', '']) {
      await expect(mfa.enable(userId, bad), bad).rejects.toMatchObject(INVALID_CODE);
    }
    expect(await mfaRow()).toMatchObject({ state: 'pending' });
    expect(await mfaEnabledFlag()).toBe(0);
  });

  it('enable with the right code turns MFA on and returns 10 distinct backup codes', async () => {
    const { secret } = await mfa.setup(userId, 'alice@example.com');
    const code = totp(secret);
    const { backupCodes } = await mfa.enable(userId, code.replace(/^(\d{3})/, '$1 '));
    expect(backupCodes).toHaveLength(10);
    expect(new Set(backupCodes).size).toBe(10);
    for (const backupCode of backupCodes) expect(backupCode).toMatch(BACKUP_FORMAT);

    expect(await mfaRow()).toMatchObject({
      state: 'enabled',
      enabled_at: new Date(clock.now()).toISOString(),
    });
    expect(Number((await mfaRow())?.last_used_step)).toBe(Math.floor(clock.now() / STEP));
    expect(await mfaEnabledFlag()).toBe(1);
    expect(await mfa.backupCodesLeft(userId)).toBe(10);
    // The confirming code's step is used up.
    expect(await mfa.verify(userId, code)).toBeNull();
    await expect(mfa.enable(userId, code)).rejects.toMatchObject(ALREADY_ENABLED);
  });

  it('accepts codes from the previous, current and next step; refuses two steps away', async () => {
    const { secret } = await enrol();
    expect(await mfa.verify(userId, totp(secret, -2))).toBeNull();
    expect(await mfa.verify(userId, totp(secret, 2))).toBeNull();
    // The refusals recorded nothing, so every step of the window is still usable, in order.
    expect(await mfa.verify(userId, totp(secret, -1))).toBe('totp');
    expect(await mfa.verify(userId, totp(secret, 0))).toBe('totp');
    expect(await mfa.verify(userId, totp(secret, 1))).toBe('totp');
  });

  it('never accepts the same code twice, even after the clock moves on', async () => {
    const { secret } = await enrol();
    const code = totp(secret);
    expect(await mfa.verify(userId, code)).toBe('totp');
    expect(await mfa.verify(userId, code)).toBeNull();
    clock.advance(STEP);
    // Still inside the window (now the previous step), still used.
    expect(await mfa.verify(userId, code)).toBeNull();
    expect(await mfa.verify(userId, totp(secret))).toBe('totp');
  });

  it('of concurrent requests with the same code, exactly one succeeds', async () => {
    const { secret } = await enrol();
    const code = totp(secret);
    const results = await Promise.all(Array.from({ length: 5 }, () => mfa.verify(userId, code)));
    expect(results.filter((result) => result === 'totp')).toHaveLength(1);
    expect(results.filter((result) => result === null)).toHaveLength(4);

    clock.advance(STEP);
    const pair = await Promise.all([mfa.verify(userId, totp(secret)), mfa.verify(userId, totp(secret))]);
    expect(pair.sort()).toEqual(['totp', null].sort());
  });

  it('refuses an older step once a newer one was accepted', async () => {
    const { secret } = await enrol();
    expect(await mfa.verify(userId, totp(secret, 1))).toBe('totp');
    expect(await mfa.verify(userId, totp(secret, 0))).toBeNull();
    expect(await mfa.verify(userId, totp(secret, -1))).toBeNull();
    expect(Number((await mfaRow())?.last_used_step)).toBe(Math.floor(clock.now() / STEP) + 1);
  });

  it('rejects, without throwing, anything that is not a code, and users without MFA', async () => {
    const other = await createUser();
    expect(await mfa.verify(other, '123456')).toBeNull();
    expect(await mfa.verify(newId(), '123456')).toBeNull();
    const { secret, backupCodes } = await enrol();
    const code = totp(secret);
    for (const bad of [
      '',
      '12345',
      `${code}1`,
      `${code}a`,
      'abcdef',
      '1'.repeat(10_000),
      backupCodes[0]!.slice(1),
    ]) {
      expect(await mfa.verify(userId, bad)).toBeNull();
    }
    expect(await mfa.verify(userId, null as unknown as string)).toBeNull();
    // Another user's backup code is not this user's.
    expect(await mfa.verify(other, backupCodes[0]!)).toBeNull();
    expect(await mfa.backupCodesLeft(userId)).toBe(10);
    // Spaces inside a TOTP code are ignored.
    expect(await mfa.verify(userId, ` ${code.slice(0, 3)} ${code.slice(3)} `)).toBe('totp');
  });

  it('a backup code works once, typed formatted, unformatted, lowercase or with look-alikes', async () => {
    const { backupCodes } = await enrol();
    const [formatted, plain, lower, spaced, lookalike] = backupCodes as [
      string,
      string,
      string,
      string,
      string,
    ];
    expect(await mfa.verify(userId, formatted)).toBe('backup_code');
    expect(await mfa.verify(userId, formatted)).toBeNull();
    expect(await mfa.verify(userId, formatted.replace('-', ''))).toBeNull();

    expect(await mfa.verify(userId, plain.replace('-', ''))).toBe('backup_code');
    expect(await mfa.verify(userId, lower.toLowerCase())).toBe('backup_code');
    expect(await mfa.verify(userId, ` ${spaced.slice(0, 3)} ${spaced.slice(3)} `)).toBe('backup_code');
    expect(await mfa.verify(userId, lookalike.replace(/0/g, 'o').replace(/1/g, 'l'))).toBe('backup_code');
    for (const used of [plain, lower, spaced, lookalike]) expect(await mfa.verify(userId, used)).toBeNull();
    expect(await mfa.backupCodesLeft(userId)).toBe(5);
  });

  it('of concurrent requests with the same backup code, exactly one succeeds', async () => {
    const { backupCodes } = await enrol();
    const results = await Promise.all(Array.from({ length: 5 }, () => mfa.verify(userId, backupCodes[0]!)));
    expect(results.filter((result) => result === 'backup_code')).toHaveLength(1);
    expect(await mfa.backupCodesLeft(userId)).toBe(9);
  });

  it('stores backup codes only as keyed hashes', async () => {
    const { backupCodes } = await enrol();
    const rows = await database.db.selectFrom('mfa_backup_codes').selectAll().execute();
    expect(rows).toHaveLength(10);
    const raw = JSON.stringify(rows);
    for (const code of backupCodes) {
      expect(raw).not.toContain(code);
      expect(raw).not.toContain(code.replace('-', ''));
    }
    for (const row of rows) {
      expect(row).toMatchObject({ user_id: userId, used_at: null });
      expect(row.code_hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('regenerating replaces every backup code; it needs MFA on (409)', async () => {
    await expect(mfa.regenerateBackupCodes(userId)).rejects.toMatchObject(NOT_ENABLED);
    const { backupCodes: old } = await enrol();
    expect(await mfa.verify(userId, old[0]!)).toBe('backup_code');
    const fresh = await mfa.regenerateBackupCodes(userId);
    expect(fresh).toHaveLength(10);
    expect(new Set(fresh).size).toBe(10);
    for (const code of fresh) expect(code).toMatch(BACKUP_FORMAT);
    expect(await mfa.backupCodesLeft(userId)).toBe(10);
    expect(await mfa.verify(userId, old[1]!)).toBeNull();
    expect(await mfa.verify(userId, fresh[0]!)).toBe('backup_code');
    expect(await mfa.backupCodesLeft(userId)).toBe(9);
  });

  it('refuses set-up while MFA is enabled (409) and keeps the secret', async () => {
    const { secret } = await enrol();
    const before = await mfaRow();
    await expect(mfa.setup(userId, 'alice@example.com')).rejects.toMatchObject(ALREADY_ENABLED);
    expect(await mfaRow()).toEqual(before);
    expect(await mfa.verify(userId, totp(secret))).toBe('totp');
  });

  it('disable removes the secret and backup codes and clears the flag', async () => {
    const { secret, backupCodes } = await enrol();
    await mfa.disable(userId);
    expect(await mfaRow()).toBeUndefined();
    const codes = await database.db
      .selectFrom('mfa_backup_codes')
      .select('code_hash')
      .where('user_id', '=', userId)
      .execute();
    expect(codes).toEqual([]);
    expect(await mfaEnabledFlag()).toBe(0);
    expect(await mfa.backupCodesLeft(userId)).toBe(0);
    expect(await mfa.verify(userId, totp(secret))).toBeNull();
    expect(await mfa.verify(userId, backupCodes[0]!)).toBeNull();
    await expect(mfa.regenerateBackupCodes(userId)).rejects.toMatchObject(NOT_ENABLED);

    // Idempotent, and enrolment can start over.
    await mfa.disable(userId);
    const again = await mfa.setup(userId, 'alice@example.com');
    expect(again.secret).not.toBe(secret);
    expect((await mfa.enable(userId, totp(again.secret))).backupCodes).toHaveLength(10);
    expect(await mfaEnabledFlag()).toBe(1);
  });
});
