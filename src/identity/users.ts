import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { BlindIndex } from '../data-protection/blind-index.ts';
import { encryptedColumn, USER_EMAIL } from '../data-protection/encrypted-columns.ts';
import type { FieldCipher } from '../data-protection/field-cipher.ts';
import type { DatabaseSchema, UsersTable } from '../storage/schema.ts';
import { IdentityErrors } from './errors.ts';
import { hashPassword, passwordProblem } from './passwords.ts';

/** A user as the API shows it: never the hash, never MFA material. */
export interface UserView {
  id: string;
  email: string;
  name: string | null;
  platform_admin: boolean;
  status: 'active' | 'disabled';
  mfa_enabled: boolean;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

/** Fields a new user is made from. */
export interface NewUser {
  email: string;
  password: string;
  name?: string | null;
  platformAdmin?: boolean;
}

/** The name of the e-mail blind index (its key is derived from it). */
export const EMAIL_INDEX_NAME = 'users.email';

/** Largest accepted e-mail address (RFC 5321 path limit). */
export const MAX_EMAIL_LENGTH = 254;
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;

/** Throws 422 weak_password with the reason and suggestions when the password is not acceptable. */
export async function checkNewPassword(password: string, userInputs: string[]): Promise<void> {
  const problem = await passwordProblem(password, userInputs);
  if (problem) {
    throw new BastionError(IdentityErrors.weakPassword, {
      message: problem.message,
      details: { reason: problem.code, suggestions: 'suggestions' in problem ? problem.suggestions : [] },
    });
  }
}

/**
 * Users: e-mail encrypted (bound to the user id) with a blind index for lookup, password as an
 * argon2id hash. E-mail addresses are compared case-insensitively (the index normalises them);
 * the stored ciphertext keeps the address as typed.
 */
export class UserStore {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #cipher: FieldCipher;
  readonly #emailIndex: BlindIndex;
  readonly #clock: Clock;

  constructor(options: {
    db: Kysely<DatabaseSchema>;
    cipher: FieldCipher;
    emailIndex: BlindIndex;
    clock: Clock;
  }) {
    this.#db = options.db;
    this.#cipher = options.cipher;
    this.#emailIndex = options.emailIndex;
    this.#clock = options.clock;
  }

  /** Creates a user; 409 when the e-mail is taken, 422 when the password is weak. */
  async create(input: NewUser): Promise<UserView> {
    const email = input.email.trim();
    if (email.length > MAX_EMAIL_LENGTH || !EMAIL_SHAPE.test(email)) {
      throw new BastionError(IdentityErrors.invalidEmail);
    }
    await checkNewPassword(input.password, [email, input.name ?? '']);
    const index = this.#emailIndex.compute(email);
    if (await this.#db.selectFrom('users').select('id').where('email_index', '=', index).executeTakeFirst()) {
      throw new BastionError(IdentityErrors.emailTaken);
    }
    const now = this.#clock.now();
    const at = new Date(now).toISOString();
    const id = newId(now);
    const row: UsersTable = {
      id,
      email: encryptedColumn(this.#cipher, USER_EMAIL).seal({ id }, email),
      email_index: index,
      name: input.name ?? null,
      password_hash: await hashPassword(input.password),
      platform_admin: input.platformAdmin ? 1 : 0,
      status: 'active',
      mfa_enabled: 0,
      password_changed_at: at,
      last_login_at: null,
      created_at: at,
      updated_at: at,
    };
    try {
      await this.#db.insertInto('users').values(row).execute();
    } catch (error) {
      // Two concurrent sign-ups of one address: the unique index decides.
      if (await this.findByEmail(email)) throw new BastionError(IdentityErrors.emailTaken);
      throw error;
    }
    return this.view(row);
  }

  /** The stored row for an e-mail address, or null. */
  async findByEmail(email: string): Promise<UsersTable | null> {
    if (typeof email !== 'string' || email.length > MAX_EMAIL_LENGTH) return null;
    const row = await this.#db
      .selectFrom('users')
      .selectAll()
      .where('email_index', '=', this.#emailIndex.compute(email.trim()))
      .executeTakeFirst();
    return row ?? null;
  }

  /** The stored row, or null. */
  async get(id: string): Promise<UsersTable | null> {
    return (await this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }

  /** True when at least one user exists. */
  async any(): Promise<boolean> {
    return (await this.#db.selectFrom('users').select('id').limit(1).executeTakeFirst()) !== undefined;
  }

  /** A page of users, oldest first. */
  async list(options: {
    limit: number;
    cursor?: string | null;
  }): Promise<{ items: UserView[]; next_cursor: string | null }> {
    let query = this.#db.selectFrom('users').selectAll();
    if (options.cursor) query = query.where('id', '>', options.cursor);
    const rows = await query
      .orderBy('id')
      .limit(options.limit + 1)
      .execute();
    const page = rows.slice(0, options.limit);
    return {
      items: await Promise.all(page.map((row) => this.view(row))),
      next_cursor: rows.length > options.limit ? page[page.length - 1]!.id : null,
    };
  }

  /** Changes the e-mail address; 409 when another user has it. */
  async changeEmail(id: string, newEmail: string): Promise<UserView> {
    const email = newEmail.trim();
    if (email.length > MAX_EMAIL_LENGTH || !EMAIL_SHAPE.test(email)) {
      throw new BastionError(IdentityErrors.invalidEmail);
    }
    const index = this.#emailIndex.compute(email);
    const other = await this.#db
      .selectFrom('users')
      .select('id')
      .where('email_index', '=', index)
      .executeTakeFirst();
    if (other && other.id !== id) throw new BastionError(IdentityErrors.emailTaken);
    await this.#db
      .updateTable('users')
      .set({
        email: encryptedColumn(this.#cipher, USER_EMAIL).seal({ id }, email),
        email_index: index,
        updated_at: new Date(this.#clock.now()).toISOString(),
      })
      .where('id', '=', id)
      .execute();
    return this.view((await this.get(id))!);
  }

  /** Changes the fields an admin may change. */
  async update(
    id: string,
    changes: { name?: string | null; status?: 'active' | 'disabled'; platformAdmin?: boolean },
  ): Promise<UsersTable> {
    const set: Partial<UsersTable> = { updated_at: new Date(this.#clock.now()).toISOString() };
    if (changes.name !== undefined) set.name = changes.name;
    if (changes.status !== undefined) set.status = changes.status;
    if (changes.platformAdmin !== undefined) set.platform_admin = changes.platformAdmin ? 1 : 0;
    const result = await this.#db.updateTable('users').set(set).where('id', '=', id).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new BastionError(IdentityErrors.userNotFound);
    return (await this.get(id))!;
  }

  /** Stores a new password hash (after a change or a rehash on login). */
  async setPasswordHash(id: string, passwordHash: string, changed: boolean): Promise<void> {
    const at = new Date(this.#clock.now()).toISOString();
    await this.#db
      .updateTable('users')
      .set(
        changed
          ? { password_hash: passwordHash, password_changed_at: at, updated_at: at }
          : { password_hash: passwordHash },
      )
      .where('id', '=', id)
      .execute();
  }

  /** Records a successful login. */
  async touchLogin(id: string): Promise<void> {
    await this.#db
      .updateTable('users')
      .set({ last_login_at: new Date(this.#clock.now()).toISOString() })
      .where('id', '=', id)
      .execute();
  }

  /** Deletes a user (sessions, memberships and MFA go with it). */
  async delete(id: string): Promise<void> {
    const result = await this.#db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new BastionError(IdentityErrors.userNotFound);
  }

  /** The e-mail address, decrypted. */
  async email(row: Pick<UsersTable, 'id' | 'email'>): Promise<string> {
    return encryptedColumn(this.#cipher, USER_EMAIL).open({ id: row.id }, row.email);
  }

  /** The public view of a row. */
  async view(row: UsersTable): Promise<UserView> {
    return {
      id: row.id,
      email: await this.email(row),
      name: row.name,
      platform_admin: row.platform_admin === 1,
      status: row.status === 'disabled' ? 'disabled' : 'active',
      mfa_enabled: row.mfa_enabled === 1,
      created_at: row.created_at,
      updated_at: row.updated_at,
      last_login_at: row.last_login_at,
    };
  }
}
