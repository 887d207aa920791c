import { createHmac, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as OTPAuth from 'otpauth';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import { type EncryptedColumn, encryptedColumn, TOTP_SECRET } from '../data-protection/encrypted-columns.ts';
import type { FieldCipher } from '../data-protection/field-cipher.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import { IdentityErrors } from './errors.ts';

/** Options for `MfaService`. */
export interface MfaServiceOptions {
  db: Kysely<DatabaseSchema>;
  cipher: FieldCipher;
  clock: Clock;
  /** 32-byte key for hashing backup codes (HMAC-SHA256). */
  backupCodeKey: Buffer;
  /** Shown in authenticator apps. */
  issuer: string;
}

/** How a code passed `verify`. */
export type MfaMethod = 'totp' | 'backup_code';

/** Backup codes made at enrolment and on regeneration. */
export const BACKUP_CODE_COUNT = 10;
// What every authenticator app expects: RFC 6238 defaults.
const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
const SECRET_BYTES = 20;
// Steps accepted either side of the current one (clock drift, a code typed as it rolled over).
const TOTP_WINDOW = 1;
// Crockford base32 (no I, L, O, U): 32 symbols, so each one is 5 bits of a random byte, unbiased.
const BACKUP_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const BACKUP_CODE_LENGTH = 10;
const BACKUP_CODE = /^[0-9A-HJKMNP-TV-Z]{10}$/;
const TOTP_CODE = /^\d{6}$/;
const SPACES = /\s+/g;
const SPACES_AND_DASHES = /[\s-]+/g;
// Longer input is neither kind of code; refused before any regex or hashing work.
const MAX_INPUT_LENGTH = 64;

function newBackupCode(): string {
  const bytes = randomBytes(BACKUP_CODE_LENGTH);
  let code = '';
  for (const byte of bytes) code += BACKUP_ALPHABET[byte & 31];
  return code;
}

function formatBackupCode(code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

// Crockford decoding reads the excluded look-alikes as the digits they resemble.
function normaliseBackupCode(input: string): string {
  return input.replace(SPACES_AND_DASHES, '').toUpperCase().replace(/O/g, '0').replace(/[IL]/g, '1');
}

/**
 * TOTP (RFC 6238) second factor with single-use backup codes. The TOTP secret is field-encrypted
 * and bound to its user; backup codes are kept only as HMAC-SHA256 hashes under `backupCodeKey`.
 *
 * Replay: a TOTP code is accepted only when its time step is later than the last accepted one,
 * and that is checked and recorded by one conditional UPDATE, so of two concurrent requests with
 * the same code exactly one succeeds. Backup codes are consumed the same way (`used_at is null`).
 * Multi-statement writes start with a conditional UPDATE or upsert of the `user_mfa` row, which
 * takes its row lock (PostgreSQL) or the write lock (SQLite) before anything else is written.
 */
export class MfaService {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #secret: EncryptedColumn<'user_mfa'>;
  readonly #clock: Clock;
  readonly #backupCodeKey: Buffer;
  readonly #issuer: string;

  constructor(options: MfaServiceOptions) {
    if (!Buffer.isBuffer(options.backupCodeKey) || options.backupCodeKey.length !== 32) {
      throw new TypeError('MfaService: backupCodeKey must be a 32-byte Buffer');
    }
    this.#db = options.db;
    this.#secret = encryptedColumn(options.cipher, TOTP_SECRET);
    this.#clock = options.clock;
    this.#backupCodeKey = options.backupCodeKey;
    this.#issuer = options.issuer;
  }

  /**
   * Starts (or restarts) enrolment with a new random 160-bit secret, stored encrypted as 'pending'.
   * Throws mfaAlreadyEnabled (409) when MFA is enabled, userNotFound (404) for an unknown user.
   */
  async setup(userId: string, accountName: string): Promise<{ secret: string; otpauthUrl: string }> {
    const secret = new OTPAuth.Secret({ size: SECRET_BYTES });
    const now = this.#now();
    const sealed = this.#secret.seal({ user_id: userId }, secret.base32);
    await this.#db.transaction().execute(async (trx) => {
      const user = await trx.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
      if (!user) throw new BastionError(IdentityErrors.userNotFound);
      // Only a pending enrolment is replaced: the upsert's WHERE leaves an enabled one untouched.
      const written = await trx
        .insertInto('user_mfa')
        .values({
          user_id: userId,
          totp_secret: sealed,
          state: 'pending',
          last_used_step: null,
          created_at: now,
          enabled_at: null,
        })
        .onConflict((conflict) =>
          conflict
            .column('user_id')
            .doUpdateSet({
              totp_secret: sealed,
              state: 'pending',
              last_used_step: null,
              created_at: now,
              enabled_at: null,
            })
            .where('user_mfa.state', '=', 'pending'),
        )
        .executeTakeFirst();
      if (Number(written.numInsertedOrUpdatedRows ?? 0n) === 0) {
        throw new BastionError(IdentityErrors.mfaAlreadyEnabled);
      }
    });
    const totp = new OTPAuth.TOTP({ ...TOTP_PARAMS, issuer: this.#issuer, label: accountName, secret });
    return { secret: secret.base32, otpauthUrl: totp.toString() };
  }

  /**
   * Confirms enrolment with a current code from the pending secret; returns 10 backup codes, shown
   * once. Throws mfaInvalidCode (400) for a wrong code, mfaNotPending (409) without a pending
   * set-up, mfaAlreadyEnabled (409) when MFA is already on.
   */
  async enable(userId: string, code: string): Promise<{ backupCodes: string[] }> {
    const row = await this.#db
      .selectFrom('user_mfa')
      .select(['totp_secret', 'state'])
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (row?.state === 'enabled') throw new BastionError(IdentityErrors.mfaAlreadyEnabled);
    if (!row) throw new BastionError(IdentityErrors.mfaNotPending);
    const step = await this.#matchingStep(userId, row.totp_secret, code);
    if (step === null) throw new BastionError(IdentityErrors.mfaInvalidCode);
    const now = this.#now();
    const codes = this.#newBackupCodes();
    await this.#db.transaction().execute(async (trx) => {
      // The secret must still be the one the code was checked against (no restart in between).
      const enabled = await trx
        .updateTable('user_mfa')
        .set({ state: 'enabled', enabled_at: now, last_used_step: step })
        .where('user_id', '=', userId)
        .where('state', '=', 'pending')
        .where('totp_secret', '=', row.totp_secret)
        .executeTakeFirst();
      if (Number(enabled.numUpdatedRows) === 0) throw new BastionError(IdentityErrors.mfaNotPending);
      await trx
        .updateTable('users')
        .set({ mfa_enabled: 1, updated_at: now })
        .where('id', '=', userId)
        .execute();
      await this.#replaceBackupCodes(trx, userId, codes);
    });
    return { backupCodes: codes.map(formatBackupCode) };
  }

  /**
   * Checks a TOTP code (±1 step, each step usable once, never an older one after a newer one) or
   * an unused backup code (consumed). Null when rejected or MFA is not enabled; never throws for a
   * wrong code.
   */
  async verify(userId: string, code: string): Promise<MfaMethod | null> {
    if (typeof code !== 'string' || code.length > MAX_INPUT_LENGTH) return null;
    const row = await this.#db
      .selectFrom('user_mfa')
      .select(['totp_secret', 'state'])
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (row?.state !== 'enabled') return null;

    const digits = code.replace(SPACES, '');
    if (TOTP_CODE.test(digits)) {
      const step = await this.#matchingStep(userId, row.totp_secret, digits);
      if (step === null) return null;
      const used = await this.#db
        .updateTable('user_mfa')
        .set({ last_used_step: step })
        .where('user_id', '=', userId)
        .where('state', '=', 'enabled')
        .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
        .executeTakeFirst();
      return Number(used.numUpdatedRows) === 1 ? 'totp' : null;
    }

    const backup = normaliseBackupCode(code);
    if (!BACKUP_CODE.test(backup)) return null;
    const consumed = await this.#db
      .updateTable('mfa_backup_codes')
      .set({ used_at: this.#now() })
      .where('user_id', '=', userId)
      .where('code_hash', '=', this.#hash(userId, backup))
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(consumed.numUpdatedRows) === 1 ? 'backup_code' : null;
  }

  /** Removes the secret and backup codes and sets `users.mfa_enabled` to 0; a no-op without MFA. */
  async disable(userId: string): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom('user_mfa').where('user_id', '=', userId).execute();
      await trx.deleteFrom('mfa_backup_codes').where('user_id', '=', userId).execute();
      await trx
        .updateTable('users')
        .set({ mfa_enabled: 0, updated_at: this.#now() })
        .where('id', '=', userId)
        .where('mfa_enabled', '=', 1)
        .execute();
    });
  }

  /** Replaces all backup codes with 10 new ones, shown once; throws mfaNotEnabled (409) without MFA. */
  async regenerateBackupCodes(userId: string): Promise<string[]> {
    const codes = this.#newBackupCodes();
    await this.#db.transaction().execute(async (trx) => {
      // A no-op UPDATE: it locks the MFA row, so a concurrent disable cannot leave codes behind.
      const locked = await trx
        .updateTable('user_mfa')
        .set({ state: 'enabled' })
        .where('user_id', '=', userId)
        .where('state', '=', 'enabled')
        .executeTakeFirst();
      if (Number(locked.numUpdatedRows) === 0) throw new BastionError(IdentityErrors.mfaNotEnabled);
      await this.#replaceBackupCodes(trx, userId, codes);
    });
    return codes.map(formatBackupCode);
  }

  /** Unused backup codes left. */
  async backupCodesLeft(userId: string): Promise<number> {
    const row = await this.#db
      .selectFrom('mfa_backup_codes')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    // PostgreSQL returns count(*) as a bigint string.
    return Number(row.count);
  }

  /** The time step (within the window around now) whose code `code` is, or null. */
  async #matchingStep(userId: string, sealed: string, code: string): Promise<number | null> {
    const token = typeof code === 'string' ? code.replace(SPACES, '') : '';
    if (!TOTP_CODE.test(token)) return null;
    const secret = OTPAuth.Secret.fromBase32(await this.#secret.open({ user_id: userId }, sealed));
    const timestamp = this.#clock.now();
    const delta = OTPAuth.TOTP.validate({ ...TOTP_PARAMS, token, secret, timestamp, window: TOTP_WINDOW });
    return delta === null ? null : OTPAuth.TOTP.counter({ period: TOTP_PARAMS.period, timestamp }) + delta;
  }

  async #replaceBackupCodes(trx: Kysely<DatabaseSchema>, userId: string, codes: string[]): Promise<void> {
    await trx.deleteFrom('mfa_backup_codes').where('user_id', '=', userId).execute();
    await trx
      .insertInto('mfa_backup_codes')
      .values(codes.map((code) => ({ user_id: userId, code_hash: this.#hash(userId, code), used_at: null })))
      .execute();
  }

  #newBackupCodes(): string[] {
    // A Set, so the (user_id, code_hash) key can never collide within one batch.
    const codes = new Set<string>();
    while (codes.size < BACKUP_CODE_COUNT) codes.add(newBackupCode());
    return [...codes];
  }

  // Keyed by a server secret, so a stolen table cannot be brute-forced offline; the user id is
  // bound in, so a hash copied to another user's rows matches nothing.
  #hash(userId: string, code: string): string {
    return createHmac('sha256', this.#backupCodeKey).update(`${userId}\0${code}`, 'utf8').digest('hex');
  }

  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }
}
