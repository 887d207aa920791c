import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import { encryptedColumn, SIGNING_PRIVATE_KEY } from '../data-protection/encrypted-columns.ts';
import type { FieldCipher } from '../data-protection/field-cipher.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';

/** The only algorithm access tokens are signed and verified with. */
export const ACCESS_TOKEN_ALGORITHM = 'EdDSA';
/** Told to every instance when the key set changes. */
export const SIGNING_KEYS_CHANNEL = 'identity:signing-keys';

const DAY_MS = 86_400_000;
const CHECK_INTERVAL_MS = 5 * 60_000;
const RELOAD_COOLDOWN_MS = 10_000;

interface ActiveKey {
  id: string;
  privateKey: CryptoKey;
  createdAt: number;
}

interface LoadedKey {
  id: string;
  publicKey: CryptoKey;
  publicJwk: JWK;
  createdAt: number;
}

/** Options of {@link SigningKeys.open}. */
export interface SigningKeysOptions {
  db: Kysely<DatabaseSchema>;
  cipher: FieldCipher;
  clock: Clock;
  state: SharedState;
  logger: Logger;
  /** Replace the active key once it is this old. */
  rotationDays: number;
  /** Keep a replaced key published this long (the longest an access token it signed can live). */
  accessTokenTtlMs: number;
}

/**
 * The access-token signing key set: Ed25519 keys, the private halves field-encrypted in the
 * database, one active (signs), older ones published for verification until every token they
 * signed has expired. Rotated by age or on demand (`bastion keys rotate-signing`); every instance
 * reloads every 5 minutes, on a pub/sub message, and on an unknown `kid` (at most every 10 s). `/.well-known/jwks.json` serves
 * {@link SigningKeys.jwks}, precomputed on each change.
 */
export class SigningKeys {
  readonly #options: SigningKeysOptions;
  #active: ActiveKey | null = null;
  #published = new Map<string, LoadedKey>();
  #jwks = '{"keys":[]}';
  #lastReload = 0;
  #timer: NodeJS.Timeout | null = null;
  #listener: Listener | null = null;

  private constructor(options: SigningKeysOptions) {
    this.#options = options;
  }

  /** Loads the key set, creating or rotating the active key when needed. */
  static async open(options: SigningKeysOptions): Promise<SigningKeys> {
    const keys = new SigningKeys(options);
    await keys.#load();
    await keys.#rotateIfDue();
    const reload = () => {
      keys.#load().catch((error) => options.logger.error({ err: error }, 'cannot reload signing keys'));
    };
    keys.#listener = listen(options.state, SIGNING_KEYS_CHANNEL, reload, { onRecovered: reload });
    // Every few minutes: pick up keys rotated elsewhere, retire replaced keys whose tokens have all
    // expired, and rotate when the active key is due.
    keys.#timer = setInterval(() => {
      keys
        .maintain()
        .catch((error) => options.logger.error({ err: error }, 'signing key maintenance failed'));
    }, CHECK_INTERVAL_MS);
    keys.#timer.unref();
    return keys;
  }

  /** The key new tokens are signed with. */
  get active(): { id: string; privateKey: CryptoKey } {
    if (!this.#active) throw new Error('No active signing key');
    return this.#active;
  }

  /** The public key for `kid` in our own set, or undefined. */
  publicKey(kid: string): CryptoKey | undefined {
    return this.#published.get(kid)?.publicKey;
  }

  /** Reloads from the database when `kid` is unknown (another instance rotated), rate-limited. */
  async lookup(kid: string): Promise<CryptoKey | undefined> {
    const known = this.publicKey(kid);
    if (known) return known;
    const now = this.#options.clock.now();
    if (now - this.#lastReload < RELOAD_COOLDOWN_MS) return undefined;
    await this.#load();
    return this.publicKey(kid);
  }

  /** The JWKS document, serialized. */
  get jwks(): string {
    return this.#jwks;
  }

  /** Makes a new active key; the previous one stays published for verification. */
  async rotate(): Promise<string> {
    const { db, cipher, clock } = this.#options;
    const now = clock.now();
    const id = newId(now);
    const { publicKey, privateKey } = await generateKeyPair(ACCESS_TOKEN_ALGORITHM, {
      crv: 'Ed25519',
      extractable: true,
    });
    const publicJwk = { ...(await exportJWK(publicKey)), kid: id, alg: ACCESS_TOKEN_ALGORITHM, use: 'sig' };
    const privateJwk = await exportJWK(privateKey);
    const sealed = encryptedColumn(cipher, SIGNING_PRIVATE_KEY).seal({ id }, JSON.stringify(privateJwk));
    const at = new Date(now).toISOString();
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('signing_keys')
        .set({ state: 'published', retired_at: null })
        .where('state', '=', 'active')
        .execute();
      await trx
        .insertInto('signing_keys')
        .values({
          id,
          algorithm: ACCESS_TOKEN_ALGORITHM,
          public_jwk: JSON.stringify(publicJwk),
          private_jwk: sealed,
          state: 'active',
          created_at: at,
          retired_at: null,
        })
        .execute();
    });
    this.#options.logger.info({ event: 'signing_key_rotated', kid: id }, 'access-token signing key rotated');
    await this.#load();
    await this.#options.state.publish(SIGNING_KEYS_CHANNEL, id).catch(() => {});
    return id;
  }

  /** Reloads (retiring replaced keys whose tokens have all expired) and rotates when due. */
  async maintain(): Promise<void> {
    await this.#load();
    await this.#rotateIfDue();
  }

  /**
   * Emergency: retires every key but the active one at once, so every access token signed before
   * the last rotation stops verifying (on every instance, as soon as it reloads). Rotate first.
   */
  async retirePrevious(): Promise<string[]> {
    const { db, clock } = this.#options;
    const rows = await db
      .updateTable('signing_keys')
      .set({ state: 'retired', retired_at: new Date(clock.now()).toISOString() })
      .where('state', '=', 'published')
      .returning('id')
      .execute();
    await this.#load();
    await this.#options.state.publish(SIGNING_KEYS_CHANNEL, 'retired').catch(() => {});
    return rows.map((row) => row.id);
  }

  /** Stops the rotation timer and the subscription. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#listener?.close();
  }

  async #rotateIfDue(): Promise<void> {
    const { clock, rotationDays } = this.#options;
    const active = this.#active;
    if (active && clock.now() - active.createdAt < rotationDays * DAY_MS) return;
    try {
      await this.rotate();
    } catch (error) {
      // Another instance rotated at the same moment (one active key is a unique index): use theirs.
      await this.#load();
      if (!this.#active) throw error;
    }
  }

  async #load(): Promise<void> {
    const { db, cipher, clock, accessTokenTtlMs } = this.#options;
    const now = clock.now();
    this.#lastReload = now;
    const rows = await db
      .selectFrom('signing_keys')
      .selectAll()
      .where('state', '!=', 'retired')
      .orderBy('created_at', 'desc')
      .execute();
    const published = new Map<string, LoadedKey>();
    let active: ActiveKey | null = null;
    const stale: string[] = [];
    for (const [index, row] of rows.entries()) {
      const createdAt = Date.parse(row.created_at);
      if (row.state === 'active') {
        const privateJwk = JSON.parse(
          await encryptedColumn(cipher, SIGNING_PRIVATE_KEY).open(row, row.private_jwk),
        ) as JWK;
        const privateKey = (await importJWK(privateJwk, ACCESS_TOKEN_ALGORITHM)) as CryptoKey;
        active = { id: row.id, privateKey, createdAt };
      } else {
        // A replaced key stays published only as long as a token it signed can live: it was
        // replaced when the next newer key (the row before it) was made.
        const newer = rows[index - 1];
        const replacedAt = newer ? Date.parse(newer.created_at) : now;
        if (now - replacedAt > accessTokenTtlMs + 60_000) {
          stale.push(row.id);
          continue;
        }
      }
      const publicJwk = JSON.parse(row.public_jwk) as JWK;
      published.set(row.id, {
        id: row.id,
        publicKey: (await importJWK(publicJwk, ACCESS_TOKEN_ALGORITHM)) as CryptoKey,
        publicJwk,
        createdAt,
      });
    }
    if (stale.length > 0) {
      await db
        .updateTable('signing_keys')
        .set({ state: 'retired', retired_at: new Date(now).toISOString() })
        .where('id', 'in', stale)
        .where('state', '=', 'published')
        .execute();
    }
    this.#active = active;
    this.#published = published;
    this.#jwks = JSON.stringify({ keys: [...published.values()].map((key) => key.publicJwk) });
  }
}
