import type { Logger } from 'pino';
import type { BastionConfig } from '../../config/schema.ts';
import type { Clock } from '../../core/clock.ts';
import type { MinuteRollups } from './minute-rollups.ts';
import { MINUTE_MS, type RollupStore } from './rollup-store.ts';

const DAY_MS = 86_400_000;
const FLUSH_INTERVAL_MS = 10_000;
const COMPACTION_INTERVAL_MS = 5 * MINUTE_MS;
const COMPACTION_MAX_HOURS = 24;

/**
 * Puts this instance's minutes in the database: the current (partial) minute every 10 s, a
 * finished minute as soon as the next one begins, all in one multi-row upsert; and, at most every
 * five minutes, compaction of old minutes into hours. While the database fails, minutes stay in
 * memory and the next flush retries them; one warning per outage.
 */
export class RollupWriter {
  readonly #store: RollupStore;
  readonly #minutes: MinuteRollups;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: BastionConfig['metricHistory'];
  #flushing: Promise<void> | null = null;
  #compacting: Promise<void> | null = null;
  #lastFlushAt = Number.NEGATIVE_INFINITY;
  #lastFlushMinute = Number.NaN;
  #lastCompactionAt = Number.NEGATIVE_INFINITY;
  #failing = false;

  constructor(options: {
    store: RollupStore;
    minutes: MinuteRollups;
    clock: Clock;
    logger: Logger;
    settings: BastionConfig['metricHistory'];
  }) {
    this.#store = options.store;
    this.#minutes = options.minutes;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#settings = options.settings;
  }

  /** Counts flush and compaction intervals from now (at start). */
  reset(now: number): void {
    this.#lastFlushAt = now;
    this.#lastFlushMinute = Math.floor(now / MINUTE_MS);
    this.#lastCompactionAt = now;
  }

  /** The running flush and compaction to wait for, or null when neither runs. */
  get busy(): Promise<unknown> | null {
    return this.#flushing || this.#compacting ? Promise.all([this.#flushing, this.#compacting]) : null;
  }

  /** After a sample: flushes when a minute ended or 10 s passed, compacts when due (not awaited). */
  afterSample(): void {
    const now = this.#clock.now();
    const minute = Math.floor(now / MINUTE_MS);
    if (!this.#flushing && (minute !== this.#lastFlushMinute || now - this.#lastFlushAt >= FLUSH_INTERVAL_MS))
      void this.flush();
    if (!this.#compacting && now - this.#lastCompactionAt >= COMPACTION_INTERVAL_MS) void this.compact();
  }

  /** Writes every minute the database lacks; on failure keeps them for the next flush. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  /** Folds minute rows older than `retentionDays` into hourly rows and drops expired hours. */
  compact(): Promise<void> {
    const now = this.#clock.now();
    this.#lastCompactionAt = now;
    this.#compacting ??= this.#store
      .compact({
        before: now - this.#settings.retentionDays * DAY_MS,
        hourlyBefore: now - this.#settings.hourlyRetentionDays * DAY_MS,
        maxHours: COMPACTION_MAX_HOURS,
        now,
      })
      .then((result) => {
        if (result.hours > 0 || result.expiredHourRows > 0)
          this.#logger.debug({ event: 'metric_history_compacted', ...result }, 'metric rollups compacted');
      })
      .catch((error: unknown) => this.#problem(error, 'could not compact metric rollups'))
      .finally(() => {
        this.#compacting = null;
      });
    return this.#compacting;
  }

  async #flushOnce(): Promise<void> {
    const now = this.#clock.now();
    this.#lastFlushAt = now;
    this.#lastFlushMinute = Math.floor(now / MINUTE_MS);
    const pending = this.#minutes.pending();
    if (pending.rollups.length === 0) return;
    try {
      await this.#store.upsert(pending.rollups, now);
    } catch (error) {
      this.#problem(error, 'could not store metric rollups; kept in memory, retried at each flush');
      return;
    }
    pending.markStored();
    if (this.#failing) {
      this.#failing = false;
      this.#logger.info({ event: 'metric_history_store_recovered' }, 'metric rollups stored again');
    }
  }

  // One warning per outage, not one per attempt.
  #problem(error: unknown, message: string): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#logger.warn({ err: error, event: 'metric_history_store_failed' }, message);
  }
}
