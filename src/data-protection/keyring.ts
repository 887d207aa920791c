import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { BastionError } from '../core/errors.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import { KEY_BYTES, open, seal } from './aes-gcm.ts';
import { DataProtectionErrors } from './errors.ts';
import { deriveKey, KEY_LABELS } from './key-derivation.ts';

/** What a data key is for. */
export type KeyPurpose = 'field' | 'blind-index' | 'pseudonym';
/** Every purpose; each has exactly one active key. */
export const KEY_PURPOSES: readonly KeyPurpose[] = ['field', 'blind-index', 'pseudonym'];
/** 'active' encrypts; 'decrypt-only' after a rotation; 'retired' once nothing is left under it. */
export type KeyState = 'active' | 'decrypt-only' | 'retired';

/** A data key's public facts (never its material). */
export interface DataKeyInfo {
  id: string;
  purpose: KeyPurpose;
  state: KeyState;
  createdAt: string;
  stateChangedAt: string;
}

/** A usable key: its id and material. */
export interface DataKey {
  id: string;
  key: Buffer;
}

interface Loaded extends DataKeyInfo {
  key: Buffer;
}

/** Pub/sub channel on which instances tell each other to reload the keyring. */
export const KEYRING_CHANNEL = 'keyring:changed';
const WRAP_VERSION = 'v1';
/** How often a failed rotation-notice subscription is retried. */

function newKeyId(): string {
  return `dk${randomBytes(8).toString('hex')}`;
}

function wrapAad(id: string, purpose: string): Buffer {
  return Buffer.from(`bastion/data-key/${WRAP_VERSION}|${id}|${purpose}`);
}

/** Encrypts a data key under the key-encryption key. */
export function wrapKey(kek: Buffer, id: string, purpose: string, key: Buffer): string {
  return `${WRAP_VERSION}.${seal(kek, key, wrapAad(id, purpose))}`;
}

/** Decrypts a wrapped data key; null when the KEK is wrong or the record was altered. */
export function unwrapKey(kek: Buffer, id: string, purpose: string, wrapped: string): Buffer | null {
  if (!wrapped.startsWith(`${WRAP_VERSION}.`)) return null;
  return open(kek, wrapped.slice(WRAP_VERSION.length + 1), wrapAad(id, purpose));
}

/** The key-encryption key for a master key. */
export function keyEncryptionKey(masterKey: Buffer): Buffer {
  return deriveKey(masterKey, KEY_LABELS.keyEncryption);
}

/**
 * Data keys, wrapped by a key derived from the master key and stored in the database. Each
 * purpose has one active key; rotation adds a new active key and keeps the old one for
 * decryption, so nothing stops while data is re-encrypted. Instances learn of rotations through
 * shared-state pub/sub, and reload on meeting a key id they do not know.
 */
export class Keyring {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #kek: Buffer;
  readonly #clock: Clock;
  readonly #state: SharedState | null;
  #keys = new Map<string, Loaded>();
  #active = new Map<KeyPurpose, Loaded>();
  #listener: Listener | null = null;
  #reloading: Promise<void> | null = null;
  #closed = false;

  private constructor(
    db: Kysely<DatabaseSchema>,
    masterKey: Buffer,
    clock: Clock,
    state: SharedState | null,
  ) {
    this.#db = db;
    this.#kek = keyEncryptionKey(masterKey);
    this.#clock = clock;
    this.#state = state;
  }

  /** Loads the keyring, creating the first key of each purpose on first start. */
  static async open(options: {
    db: Kysely<DatabaseSchema>;
    masterKey: Buffer;
    clock: Clock;
    state?: SharedState;
  }): Promise<Keyring> {
    const keyring = new Keyring(options.db, options.masterKey, options.clock, options.state ?? null);
    await keyring.reload();
    for (const purpose of KEY_PURPOSES) {
      if (!keyring.#active.has(purpose)) await keyring.#createActive(purpose);
    }
    keyring.#listen();
    return keyring;
  }

  /** The active key of a purpose. */
  active(purpose: KeyPurpose): DataKey {
    const key = this.#active.get(purpose);
    if (!key) throw new TypeError(`No active ${purpose} key; the keyring was not opened`);
    return key;
  }

  /** A key by id from memory, or null when this instance has not loaded it. */
  cached(id: string): Loaded | null {
    return this.#keys.get(id) ?? null;
  }

  /** A key by id, reloading from the database once when it is unknown (rotated elsewhere). */
  async byId(id: string): Promise<Loaded> {
    const known = this.#keys.get(id);
    if (known) return known;
    await this.reload();
    const loaded = this.#keys.get(id);
    if (!loaded) throw new BastionError(DataProtectionErrors.unknownKey);
    return loaded;
  }

  /** Every key's public facts, newest first. */
  list(): DataKeyInfo[] {
    return [...this.#keys.values()]
      .map(({ key: _material, ...info }) => info)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Rereads every key from the database (concurrent callers share one read). */
  reload(): Promise<void> {
    this.#reloading ??= this.#load().finally(() => {
      this.#reloading = null;
    });
    return this.#reloading;
  }

  /**
   * Makes a new active key for `purpose`; the previous one becomes decrypt-only. Other instances
   * are told to reload. Returns the new key's facts.
   */
  async rotate(purpose: KeyPurpose = 'field'): Promise<DataKeyInfo> {
    const now = new Date(this.#clock.now()).toISOString();
    const id = newKeyId();
    const material = randomBytes(KEY_BYTES);
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .updateTable('data_keys')
        .set({ state: 'decrypt-only', state_changed_at: now })
        .where('purpose', '=', purpose)
        .where('state', '=', 'active')
        .execute();
      await trx
        .insertInto('data_keys')
        .values({
          id,
          purpose,
          state: 'active',
          wrapped_key: wrapKey(this.#kek, id, purpose, material),
          created_at: now,
          state_changed_at: now,
        })
        .execute();
    });
    await this.reload();
    await this.#announce();
    const info = this.list().find((key) => key.id === id);
    if (!info) throw new Error(`Rotated key ${id} did not load`);
    return info;
  }

  /** Marks a decrypt-only key retired (nothing is left under it). */
  async retire(id: string): Promise<void> {
    const now = new Date(this.#clock.now()).toISOString();
    await this.#db
      .updateTable('data_keys')
      .set({ state: 'retired', state_changed_at: now })
      .where('id', '=', id)
      .where('state', '=', 'decrypt-only')
      .execute();
    await this.reload();
    await this.#announce();
  }

  /** Stops listening for changes. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#listener?.close();
    this.#listener = null;
  }

  /**
   * Subscribes to rotation notices without holding up start-up: while shared state is down the
   * keyring still works (unknown key ids trigger a reload), and the subscription is retried.
   */
  #listen(): void {
    if (!this.#state || this.#closed) return;
    this.#listener = listen(this.#state, KEYRING_CHANNEL, () => {
      this.reload().catch(() => {
        // The next lookup of an unknown id retries; a failed background reload changes nothing.
      });
    });
  }

  async #announce(): Promise<void> {
    // Other instances reload on their own when they meet an unknown id; the message only speeds it up.
    await this.#state?.publish(KEYRING_CHANNEL, 'reload').catch(() => {});
  }

  async #createActive(purpose: KeyPurpose): Promise<void> {
    const now = new Date(this.#clock.now()).toISOString();
    const id = newKeyId();
    try {
      await this.#db
        .insertInto('data_keys')
        .values({
          id,
          purpose,
          state: 'active',
          wrapped_key: wrapKey(this.#kek, id, purpose, randomBytes(KEY_BYTES)),
          created_at: now,
          state_changed_at: now,
        })
        .execute();
    } catch (error) {
      // Another instance created it first (one active key per purpose is a unique index).
      await this.reload();
      if (this.#active.has(purpose)) return;
      throw error;
    }
    await this.reload();
  }

  async #load(): Promise<void> {
    const rows = await this.#db.selectFrom('data_keys').selectAll().execute();
    const keys = new Map<string, Loaded>();
    const active = new Map<KeyPurpose, Loaded>();
    for (const row of rows) {
      const material = unwrapKey(this.#kek, row.id, row.purpose, row.wrapped_key);
      if (!material) {
        throw new Error(
          `Data key ${row.id} cannot be unwrapped: BASTION_MASTER_KEY is not the key these data keys were stored with ` +
            '(after changing it, run `bastion keys rewrap`), or the row was altered',
        );
      }
      const loaded: Loaded = {
        id: row.id,
        purpose: row.purpose as KeyPurpose,
        state: row.state as KeyState,
        createdAt: row.created_at,
        stateChangedAt: row.state_changed_at,
        key: material,
      };
      keys.set(row.id, loaded);
      if (loaded.state === 'active') active.set(loaded.purpose, loaded);
    }
    this.#keys = keys;
    this.#active = active;
  }
}

/**
 * Re-wraps every data key from an old master key to a new one, in one transaction. Keys already
 * under the new master key are left alone, so the command can be run again after an interruption.
 * Returns how many keys were re-wrapped.
 */
export async function rewrapDataKeys(
  db: Kysely<DatabaseSchema>,
  oldMasterKey: Buffer,
  newMasterKey: Buffer,
): Promise<number> {
  const oldKek = keyEncryptionKey(oldMasterKey);
  const newKek = keyEncryptionKey(newMasterKey);
  return db.transaction().execute(async (trx) => {
    const rows = await trx.selectFrom('data_keys').selectAll().execute();
    let changed = 0;
    for (const row of rows) {
      if (unwrapKey(newKek, row.id, row.purpose, row.wrapped_key)) continue;
      const material = unwrapKey(oldKek, row.id, row.purpose, row.wrapped_key);
      if (!material) throw new Error(`Data key ${row.id} opens with neither the old nor the new master key`);
      await trx
        .updateTable('data_keys')
        .set({ wrapped_key: wrapKey(newKek, row.id, row.purpose, material) })
        .where('id', '=', row.id)
        .execute();
      changed += 1;
    }
    return changed;
  });
}
