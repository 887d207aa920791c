import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { BastionError, HttpErrors } from '../core/errors.ts';
import type { ApiKeysTable, DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import { apiKeySecretMatches, createApiKey, parseApiKey } from './api-key-token.ts';
import { isPermission, type Permission } from './permissions.ts';

/** Every instance forgets a revoked key at once on this channel. */
export const API_KEY_REVOKED_CHANNEL = 'identity:api-key-revoked';
const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;
/** `last_used_at` is written at most this often per key, so a busy key costs no write per request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** A key as the API lists it; the secret is never shown again after creation. */
export interface ApiKeyView {
  id: string;
  name: string;
  permissions: string[];
  prefix: string;
  created_by: string | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A presented key that exists but may not be used (wrong secret, revoked or expired). */
export interface RejectedKey {
  rejected: true;
  id: string;
  orgId: string;
  reason: 'wrong_secret' | 'revoked' | 'expired';
  /** True the first time in {@link LAST_USED_RESOLUTION_MS} for this key: record the event. */
  firstInWindow: boolean;
}

/** A key that authenticated a request. */
export interface AuthenticatedKey {
  rejected?: false;
  id: string;
  orgId: string;
  createdBy: string | null;
  permissions: ReadonlySet<Permission>;
  /** True the first time in {@link LAST_USED_RESOLUTION_MS}: record the use. */
  firstUseInWindow: boolean;
}

function view(row: ApiKeysTable): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    permissions: JSON.parse(row.permissions) as string[],
    prefix: `bst_${row.id}_`,
    created_by: row.created_by,
    created_at: row.created_at,
    expires_at: row.expires_at,
    last_used_at: row.last_used_at,
    revoked_at: row.revoked_at,
  };
}

/**
 * Organization API keys: `bst_<public id>_<256-bit secret>`, shown once, stored as a hash,
 * scoped to a subset of the creator's permissions in the organization, with optional expiry,
 * last-used time and revocation. Verified keys are cached briefly; a revocation clears every
 * instance's cache at once.
 */
export class ApiKeyService {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  readonly #state: SharedState;
  readonly #cache = new Map<string, { row: ApiKeysTable; at: number }>();
  readonly #lastUsedWritten = new Map<string, number>();
  readonly #lastRejected = new Map<string, number>();
  #listener: Listener | null = null;

  constructor(options: { db: Kysely<DatabaseSchema>; clock: Clock; state: SharedState }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#state = options.state;
  }

  /** Starts listening for revocations on other instances (retried in the background while state is down). */
  start(): void {
    this.#listener = listen(this.#state, API_KEY_REVOKED_CHANNEL, (id) => this.#cache.delete(id), {
      onRecovered: () => this.#cache.clear(),
    });
  }

  async close(): Promise<void> {
    await this.#listener?.close();
  }

  /**
   * Makes a key. `permissions` must be known and held by the creator (`granted`): a key can never
   * do more than the person who made it.
   */
  async create(input: {
    orgId: string;
    name: string;
    permissions: string[];
    expiresAt: string | null;
    createdBy: string | null;
    granted: ReadonlySet<string>;
  }): Promise<{ key: ApiKeyView; token: string }> {
    const unknown = input.permissions.filter((permission) => !isPermission(permission));
    if (unknown.length > 0) {
      throw new BastionError(HttpErrors.validation, {
        message: `Unknown permission(s): ${unknown.join(', ')}`,
      });
    }
    const beyond = input.permissions.filter((permission) => !input.granted.has(permission));
    if (beyond.length > 0) {
      throw new BastionError(HttpErrors.forbidden, {
        message: `A key cannot have permissions you do not hold: ${beyond.join(', ')}`,
      });
    }
    const now = this.#clock.now();
    if (input.expiresAt !== null && !(Date.parse(input.expiresAt) > now)) {
      throw new BastionError(HttpErrors.validation, { message: 'expires_at must be a future date-time' });
    }
    const made = createApiKey();
    const row: ApiKeysTable = {
      id: made.publicId,
      org_id: input.orgId,
      name: input.name,
      secret_hash: made.secretHash,
      permissions: JSON.stringify([...new Set(input.permissions)].sort()),
      created_by: input.createdBy,
      created_at: new Date(now).toISOString(),
      expires_at: input.expiresAt === null ? null : new Date(input.expiresAt).toISOString(),
      last_used_at: null,
      revoked_at: null,
    };
    await this.#db.insertInto('api_keys').values(row).execute();
    return { key: view(row), token: made.token };
  }

  /**
   * An organization's keys, newest first (revoked ones included, marked). The cursor is
   * `<created_at>|<id>` of the last key of the previous page, so keys made in the same
   * millisecond are neither skipped nor repeated.
   */
  async list(orgId: string, options: { limit: number; cursor?: string | null }) {
    let query = this.#db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId);
    const [createdAt, id] = (options.cursor ?? '').split('|');
    if (createdAt && id) {
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', createdAt),
          eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(options.limit + 1)
      .execute();
    const page = rows.slice(0, options.limit);
    const last = page[page.length - 1];
    return {
      items: page.map(view),
      next_cursor: rows.length > options.limit && last ? `${last.created_at}|${last.id}` : null,
    };
  }

  /** Revokes a key of the organization; false when there is no such key there. */
  async revoke(orgId: string, id: string): Promise<ApiKeyView | null> {
    const at = new Date(this.#clock.now()).toISOString();
    await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('org_id', '=', orgId)
      .where('revoked_at', 'is', null)
      .execute();
    const row = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', id)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    this.#cache.delete(id);
    await this.#state.publish(API_KEY_REVOKED_CHANNEL, id).catch(() => {});
    return row ? view(row) : null;
  }

  /**
   * Revokes every live key a user made, in every organization (the user was disabled or
   * deleted: a key never outlives its maker's access). Returns the revoked ids.
   */
  async revokeCreatedBy(userId: string): Promise<string[]> {
    const at = new Date(this.#clock.now()).toISOString();
    const rows = await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('created_by', '=', userId)
      .where('revoked_at', 'is', null)
      .returning('id')
      .execute();
    for (const { id } of rows) {
      this.#cache.delete(id);
      await this.#state.publish(API_KEY_REVOKED_CHANNEL, id).catch(() => {});
    }
    return rows.map((row) => row.id);
  }

  /**
   * The key behind a presented token when it is valid now; a {@link RejectedKey} when the key
   * exists but the secret is wrong or the key is revoked or expired; null when it is not a key.
   */
  async authenticate(token: string): Promise<AuthenticatedKey | RejectedKey | null> {
    const parsed = parseApiKey(token);
    if (!parsed) return null;
    const now = this.#clock.now();
    let entry = this.#cache.get(parsed.publicId);
    if (!entry || now - entry.at >= CACHE_TTL_MS) {
      const row = await this.#db
        .selectFrom('api_keys')
        .selectAll()
        .where('id', '=', parsed.publicId)
        .executeTakeFirst();
      if (!row) return null;
      if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
      entry = { row, at: now };
      this.#cache.set(parsed.publicId, entry);
    }
    const { row } = entry;
    const reason = !apiKeySecretMatches(parsed.secret, row.secret_hash)
      ? 'wrong_secret'
      : row.revoked_at !== null
        ? 'revoked'
        : row.expires_at !== null && Date.parse(row.expires_at) <= now
          ? 'expired'
          : null;
    if (reason !== null) {
      const last = this.#lastRejected.get(row.id) ?? 0;
      const firstInWindow = now - last >= LAST_USED_RESOLUTION_MS;
      if (firstInWindow) {
        if (this.#lastRejected.size > CACHE_MAX) this.#lastRejected.clear();
        this.#lastRejected.set(row.id, now);
      }
      return { rejected: true, id: row.id, orgId: row.org_id, reason, firstInWindow };
    }
    const written = this.#lastUsedWritten.get(row.id) ?? 0;
    const firstUseInWindow = now - written >= LAST_USED_RESOLUTION_MS;
    if (firstUseInWindow) {
      this.#lastUsedWritten.set(row.id, now);
      if (this.#lastUsedWritten.size > CACHE_MAX) this.#lastUsedWritten.clear();
      await this.#db
        .updateTable('api_keys')
        .set({ last_used_at: new Date(now).toISOString() })
        .where('id', '=', row.id)
        .execute();
    }
    return {
      id: row.id,
      orgId: row.org_id,
      createdBy: row.created_by,
      permissions: new Set((JSON.parse(row.permissions) as string[]).filter(isPermission)),
      firstUseInWindow,
    };
  }
}
