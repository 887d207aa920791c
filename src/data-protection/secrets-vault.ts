import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import type { DatabaseSchema, SecretsTable } from '../storage/schema.ts';
import { type EncryptedColumn, encryptedColumn, SECRET_VALUE } from './encrypted-columns.ts';
import { DataProtectionErrors } from './errors.ts';
import type { FieldCipher } from './field-cipher.ts';

/** Largest secret value, in bytes of UTF-8. */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;
/** Longest rotation period accepted, in days (100 years: anything longer is "never"). */
export const MAX_ROTATION_PERIOD_DAYS = 36_500;
const NAME = /^[A-Za-z0-9._/:-]{1,200}$/;
// In a `u` regex a surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /\p{Surrogate}/u;
const DAY_MS = 86_400_000;

/** A secret's metadata; never its value. Field names are those of the JSON API. */
export interface SecretInfo {
  name: string;
  current_version: number;
  /** ISO-8601 UTC, as every time below. */
  created_at: string;
  /** When the current version was written (equals `created_at` until the first rotation). */
  rotated_at: string;
  last_read_at: string | null;
  rotation_period_days: number | null;
  /** `rotated_at` plus the rotation period; null without a period. */
  next_rotation_due: string | null;
  /** True once `next_rotation_due` has been reached. */
  overdue: boolean;
}

/** One decrypted version of a secret. */
export interface SecretValue {
  name: string;
  version: number;
  value: string;
  /** When this version was written. */
  created_at: string;
}

/** Options of `set` and `rotate`. */
export interface SecretOptions {
  /** Days after a rotation by which the next one is due; null for none. Default: none on `set`, unchanged on `rotate`. */
  rotationPeriodDays?: number | null;
}

/** What `/health/detailed` shows about the vault. */
export interface SecretsSummary {
  count: number;
  /** Names past their rotation period, sorted. */
  rotation_overdue: string[];
}

/** Options for `SecretsVault`. */
export interface SecretsVaultOptions {
  db: Kysely<DatabaseSchema>;
  cipher: FieldCipher;
  clock: Clock;
}

type RotationRow = Pick<SecretsTable, 'rotated_at' | 'rotation_period_days'>;

function dueAt(row: RotationRow): number | null {
  return row.rotation_period_days === null
    ? null
    : Date.parse(row.rotated_at) + row.rotation_period_days * DAY_MS;
}

// Sorted in code, not SQL: PostgreSQL would order by its collation and SQLite by bytes.
function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Throws invalidSecretName (400) unless `name` is 1-200 characters of [A-Za-z0-9._/:-]. */
export function checkSecretName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new BastionError(DataProtectionErrors.invalidSecretName);
  }
}

function checkValue(value: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new BastionError(DataProtectionErrors.invalidSecretValue);
  }
  // Every UTF-16 unit is at least one byte of UTF-8, so an overlong string is refused unscanned.
  if (value.length > MAX_SECRET_VALUE_BYTES || Buffer.byteLength(value, 'utf8') > MAX_SECRET_VALUE_BYTES) {
    throw new BastionError(DataProtectionErrors.secretValueTooLarge);
  }
  // A lone surrogate would be replaced on encoding, so the value read back would differ.
  if (LONE_SURROGATE.test(value)) throw new BastionError(DataProtectionErrors.invalidSecretValue);
}

function checkPeriod(days: number | null | undefined): void {
  if (days === undefined || days === null) return;
  if (!Number.isInteger(days) || days < 1 || days > MAX_ROTATION_PERIOD_DAYS) {
    throw new BastionError(DataProtectionErrors.invalidRotationPeriod);
  }
}

function notFound(name: string, version?: number): BastionError {
  const message =
    version === undefined ? `No secret named "${name}"` : `Secret "${name}" has no version ${version}`;
  return new BastionError(DataProtectionErrors.secretNotFound, { message });
}

/**
 * Named secrets, encrypted and versioned. `set` creates a secret (409 when the name is taken);
 * `rotate` adds a version and makes it current (404 when absent); old versions stay readable
 * until the secret is deleted. Each version's ciphertext is bound to its (name, version), so a
 * value copied to another row fails to decrypt.
 *
 * Concurrency: `rotate` first increments `current_version` in an UPDATE … RETURNING inside its
 * transaction. That takes the row's write lock (PostgreSQL) or the database's write lock (SQLite)
 * before anything is read, so concurrent rotations queue and each gets the next number; the
 * (name, version) primary key turns any other overlap into an error rather than a lost version.
 */
export class SecretsVault {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #column: EncryptedColumn<'secret_versions'>;
  readonly #clock: Clock;

  constructor(options: SecretsVaultOptions) {
    this.#db = options.db;
    this.#column = encryptedColumn(options.cipher, SECRET_VALUE);
    this.#clock = options.clock;
  }

  /** Creates a secret at version 1; throws secretExists (409) when the name is taken. Default: no rotation period. */
  async set(name: string, value: string, options: SecretOptions = {}): Promise<SecretInfo> {
    checkSecretName(name);
    checkValue(value);
    checkPeriod(options.rotationPeriodDays);
    const now = this.#now();
    const row: SecretsTable = {
      name,
      current_version: 1,
      rotation_period_days: options.rotationPeriodDays ?? null,
      created_at: now,
      rotated_at: now,
      last_read_at: null,
    };
    await this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('secrets')
        .values(row)
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
        throw new BastionError(DataProtectionErrors.secretExists, {
          message: `A secret named "${name}" exists; use rotate to change its value`,
        });
      }
      await trx
        .insertInto('secret_versions')
        .values({ name, version: 1, value: this.#column.seal({ name, version: 1 }, value), created_at: now })
        .execute();
    });
    return this.#info(row);
  }

  /** Adds a version and makes it current; throws secretNotFound (404). Default: the rotation period is kept. */
  async rotate(name: string, value: string, options: SecretOptions = {}): Promise<SecretInfo> {
    checkSecretName(name);
    checkValue(value);
    checkPeriod(options.rotationPeriodDays);
    const now = this.#now();
    const row = await this.#db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('secrets')
        .set((eb) => ({
          current_version: eb('current_version', '+', 1),
          rotated_at: now,
          ...(options.rotationPeriodDays !== undefined
            ? { rotation_period_days: options.rotationPeriodDays }
            : {}),
        }))
        .where('name', '=', name)
        .returningAll()
        .executeTakeFirst();
      if (!updated) throw notFound(name);
      const version = updated.current_version;
      await trx
        .insertInto('secret_versions')
        .values({ name, version, value: this.#column.seal({ name, version }, value), created_at: now })
        .execute();
      return updated;
    });
    return this.#info(row);
  }

  /** The current version's value; records the read in `last_read_at`. */
  async get(name: string): Promise<SecretValue> {
    checkSecretName(name);
    const row = await this.#db
      .selectFrom('secrets')
      .innerJoin('secret_versions', (join) =>
        join
          .onRef('secret_versions.name', '=', 'secrets.name')
          .onRef('secret_versions.version', '=', 'secrets.current_version'),
      )
      .select(['secret_versions.version', 'secret_versions.value', 'secret_versions.created_at'])
      .where('secrets.name', '=', name)
      .executeTakeFirst();
    if (!row) throw notFound(name);
    return this.#open(name, row);
  }

  /** One version's value, current or not; records the read in `last_read_at`. */
  async getVersion(name: string, version: number): Promise<SecretValue> {
    checkSecretName(name);
    if (!Number.isSafeInteger(version) || version < 1) throw notFound(name, version);
    const row = await this.#db
      .selectFrom('secret_versions')
      .select(['version', 'value', 'created_at'])
      .where('name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) {
      const exists = await this.#db
        .selectFrom('secrets')
        .select('name')
        .where('name', '=', name)
        .executeTakeFirst();
      throw exists ? notFound(name, version) : notFound(name);
    }
    return this.#open(name, row);
  }

  /** Every secret's metadata, sorted by name; never values. */
  async list(): Promise<SecretInfo[]> {
    const rows = await this.#db.selectFrom('secrets').selectAll().execute();
    return rows.sort(byName).map((row) => this.#info(row));
  }

  /** One secret's metadata; throws secretNotFound (404). */
  async info(name: string): Promise<SecretInfo> {
    checkSecretName(name);
    const row = await this.#db.selectFrom('secrets').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound(name);
    return this.#info(row);
  }

  /** Deletes a secret and every version of it; throws secretNotFound (404). */
  async delete(name: string): Promise<void> {
    checkSecretName(name);
    await this.#db.transaction().execute(async (trx) => {
      // Versions first, then the secret: a rotation that slips in between is removed by the
      // foreign key's cascade, so no version outlives its secret.
      await trx.deleteFrom('secret_versions').where('name', '=', name).execute();
      const deleted = await trx.deleteFrom('secrets').where('name', '=', name).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw notFound(name);
    });
  }

  /** Names of the secrets past their rotation period, sorted. */
  async overdue(): Promise<string[]> {
    return (await this.summary()).rotation_overdue;
  }

  /** How many secrets there are and which are overdue, in one query (health, metrics). */
  async summary(): Promise<SecretsSummary> {
    const rows = await this.#db
      .selectFrom('secrets')
      .select(['name', 'rotated_at', 'rotation_period_days'])
      .execute();
    const now = this.#clock.now();
    const overdue = rows.filter((row) => {
      const due = dueAt(row);
      return due !== null && now >= due;
    });
    return { count: rows.length, rotation_overdue: overdue.sort(byName).map((row) => row.name) };
  }

  async #open(
    name: string,
    row: { version: number; value: string; created_at: string },
  ): Promise<SecretValue> {
    const value = await this.#column.open({ name, version: row.version }, row.value);
    // Recorded after a successful decryption only: a failed read did not disclose anything.
    await this.#db
      .updateTable('secrets')
      .set({ last_read_at: this.#now() })
      .where('name', '=', name)
      .execute();
    return { name, version: row.version, value, created_at: row.created_at };
  }

  #info(row: SecretsTable): SecretInfo {
    const due = dueAt(row);
    return {
      name: row.name,
      current_version: row.current_version,
      created_at: row.created_at,
      rotated_at: row.rotated_at,
      last_read_at: row.last_read_at,
      rotation_period_days: row.rotation_period_days,
      next_rotation_due: due === null ? null : new Date(due).toISOString(),
      overdue: due !== null && this.#clock.now() >= due,
    };
  }

  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }
}
