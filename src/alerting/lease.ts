import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.ts';
import type { DatabaseSchema } from '../storage/schema.ts';

/**
 * A named lease in the database: at most one holder at a time, held until it stops renewing
 * and the lease expires. Works the same on SQLite and PostgreSQL (one conditional UPDATE, or an
 * INSERT that does nothing on conflict), so instances sharing a database agree without Redis.
 * Holders compare expiry with their own clocks: instances must keep their clocks in sync (NTP).
 */
export class Lease {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #name: string;
  readonly #holder: string;
  readonly #ttlMs: number;
  readonly #clock: Clock;

  constructor(options: {
    db: Kysely<DatabaseSchema>;
    name: string;
    holder: string;
    ttlMs: number;
    clock: Clock;
  }) {
    this.#db = options.db;
    this.#name = options.name;
    this.#holder = options.holder;
    this.#ttlMs = options.ttlMs;
    this.#clock = options.clock;
  }

  get holder(): string {
    return this.#holder;
  }

  /** Takes the lease when it is free or expired, or renews it; true when this holder has it now. */
  async acquire(): Promise<boolean> {
    const now = this.#clock.now();
    const expiresAt = now + this.#ttlMs;
    const renewed = await this.#db
      .updateTable('leases')
      .set({ holder: this.#holder, expires_at: expiresAt })
      .where('name', '=', this.#name)
      .where((eb) => eb.or([eb('holder', '=', this.#holder), eb('expires_at', '<=', now)]))
      .executeTakeFirst();
    if (Number(renewed.numUpdatedRows) > 0) return true;
    const inserted = await this.#db
      .insertInto('leases')
      .values({ name: this.#name, holder: this.#holder, expires_at: expiresAt })
      .onConflict((conflict) => conflict.column('name').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Gives the lease up (another instance can take it at once). */
  async release(): Promise<void> {
    await this.#db
      .deleteFrom('leases')
      .where('name', '=', this.#name)
      .where('holder', '=', this.#holder)
      .execute();
  }

  /** Who holds the lease and until when, or null when nobody does. */
  async current(): Promise<{ holder: string; expiresAt: number } | null> {
    const row = await this.#db
      .selectFrom('leases')
      .select(['holder', 'expires_at'])
      .where('name', '=', this.#name)
      .executeTakeFirst();
    if (!row || Number(row.expires_at) <= this.#clock.now()) return null;
    return { holder: row.holder, expiresAt: Number(row.expires_at) };
  }
}
