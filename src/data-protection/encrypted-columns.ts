import type { DatabaseSchema } from '../storage/schema.ts';
import type { FieldCipher } from './field-cipher.ts';

/** An encrypted column: where it is, and how to name a row (for the AAD and for updates). */
export interface EncryptedColumnSpec<Table extends keyof DatabaseSchema = keyof DatabaseSchema> {
  table: Table;
  column: keyof DatabaseSchema[Table] & string;
  /** Columns that identify a row (its primary key). */
  keyColumns: ReadonlyArray<keyof DatabaseSchema[Table] & string>;
}

/** Any encrypted column, untyped: what the re-encryption job walks. */
export interface ColumnLocation {
  readonly table: string;
  readonly column: string;
  readonly keyColumns: readonly string[];
}

/** The row id bound into the ciphertext: the key columns' values joined by '#'. */
export function rowIdOf(spec: ColumnLocation, row: Partial<Record<string, unknown>>): string {
  return spec.keyColumns.map((column) => String(row[column])).join('#');
}

/** The vault's secret values. */
export const SECRET_VALUE: EncryptedColumnSpec<'secret_versions'> = {
  table: 'secret_versions',
  column: 'value',
  keyColumns: ['name', 'version'],
};

/** Users' e-mail addresses (looked up by their blind index, `users.email_index`). */
export const USER_EMAIL: EncryptedColumnSpec<'users'> = {
  table: 'users',
  column: 'email',
  keyColumns: ['id'],
};

/** TOTP secrets. */
export const TOTP_SECRET: EncryptedColumnSpec<'user_mfa'> = {
  table: 'user_mfa',
  column: 'totp_secret',
  keyColumns: ['user_id'],
};

/** The private halves of access-token signing keys (JWK JSON). */
export const SIGNING_PRIVATE_KEY: EncryptedColumnSpec<'signing_keys'> = {
  table: 'signing_keys',
  column: 'private_jwk',
  keyColumns: ['id'],
};

/**
 * Every encrypted column in the database; the re-encryption job walks them after a rotation.
 * A capability that adds an encrypted column lists it here.
 */
export const ENCRYPTED_COLUMNS: readonly ColumnLocation[] = [
  SECRET_VALUE,
  USER_EMAIL,
  TOTP_SECRET,
  SIGNING_PRIVATE_KEY,
];

/** An encrypted column bound to a cipher: seal values before writing, open them after reading. */
export interface EncryptedColumn<Table extends keyof DatabaseSchema> {
  /** Encrypts `value` for the row identified by `row`'s key columns. */
  seal(row: Partial<DatabaseSchema[Table]>, value: string): string;
  /** Decrypts the stored value of the row. */
  open(row: Partial<DatabaseSchema[Table]>, stored: string): Promise<string>;
}

/** A typed helper for Kysely code: `const v = encryptedColumn(cipher, SECRET_VALUE); v.seal(row, value)`. */
export function encryptedColumn<Table extends keyof DatabaseSchema>(
  cipher: FieldCipher,
  spec: EncryptedColumnSpec<Table>,
): EncryptedColumn<Table> {
  const context = (row: Partial<DatabaseSchema[Table]>) => ({
    table: spec.table,
    column: spec.column,
    rowId: rowIdOf(spec, row as Partial<Record<string, unknown>>),
  });
  return {
    seal: (row, value) => cipher.encrypt(value, context(row)),
    open: (row, stored) => cipher.decrypt(stored, context(row)),
  };
}
