import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import type { DatabaseSchema } from '../storage/schema.ts';
import type { SharedState } from '../storage/state.ts';
import { type Listener, listen } from '../storage/subscription.ts';
import {
  isRole,
  PERMISSIONS,
  type Permission,
  PLATFORM_PERMISSIONS,
  ROLE_PERMISSIONS,
  type Role,
} from './permissions.ts';

/** Every instance drops its cached roles for a user and organization on this channel. */
export const MEMBERSHIP_CHANNEL = 'identity:membership-changed';
const CACHE_MAX = 50_000;

const ALL_IN_ORGANIZATION: ReadonlySet<Permission> = new Set(
  PERMISSIONS.filter((permission) => !PLATFORM_PERMISSIONS.includes(permission)),
);

interface Cached {
  role: Role | null;
  exists: boolean;
  at: number;
}

/**
 * Looks up a user's role in an organization for every tenant-scoped request, from a short-lived
 * in-memory cache (`ttlMs`) that every instance clears at once when a membership or organization
 * changes (pub/sub), so a removed member loses access immediately.
 */
export class MembershipResolver {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #state: SharedState;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, Cached>();
  #listener: Listener | null = null;

  constructor(options: { db: Kysely<DatabaseSchema>; state: SharedState; clock: Clock; ttlMs?: number }) {
    this.#db = options.db;
    this.#state = options.state;
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? 10_000;
  }

  /** Starts listening for changes on other instances (retried in the background while state is down). */
  start(): void {
    const clear = () => this.#cache.clear();
    this.#listener = listen(this.#state, MEMBERSHIP_CHANNEL, clear, { onRecovered: clear });
  }

  async close(): Promise<void> {
    await this.#listener?.close();
  }

  /** Tells every instance that memberships of an organization changed. */
  async changed(): Promise<void> {
    this.#cache.clear();
    await this.#state.publish(MEMBERSHIP_CHANNEL, '*').catch(() => {});
  }

  /**
   * Permissions of a user in an organization: the role's, or everything for the platform admin
   * (in an organization that exists); null when the user has no access.
   */
  async permissionsOf(
    userId: string,
    orgId: string,
    platformAdmin: boolean,
  ): Promise<ReadonlySet<Permission> | null> {
    const entry = await this.#lookup(userId, orgId);
    if (!entry.exists) return null;
    if (platformAdmin) return ALL_IN_ORGANIZATION;
    return entry.role ? ROLE_PERMISSIONS[entry.role] : null;
  }

  /** The user's role in the organization, or null. */
  async roleOf(userId: string, orgId: string): Promise<Role | null> {
    return (await this.#lookup(userId, orgId)).role;
  }

  async #lookup(userId: string, orgId: string): Promise<Cached> {
    const key = `${userId}|${orgId}`;
    const now = this.#clock.now();
    const cached = this.#cache.get(key);
    if (cached && now - cached.at < this.#ttlMs) return cached;
    const row = await this.#db
      .selectFrom('organizations')
      .leftJoin('memberships', (join) =>
        join.onRef('memberships.org_id', '=', 'organizations.id').on('memberships.user_id', '=', userId),
      )
      .select(['organizations.id', 'memberships.role'])
      .where('organizations.id', '=', orgId)
      .executeTakeFirst();
    const role = row?.role && isRole(row.role) ? row.role : null;
    const entry: Cached = { role, exists: row !== undefined, at: now };
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(key, entry);
    return entry;
  }
}
