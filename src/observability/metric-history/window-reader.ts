import type { Logger } from 'pino';
import type { Aggregation } from '../../alerting/rules.ts';
import type { Clock } from '../../core/clock.ts';
import { aggregate, combine } from './aggregate.ts';
import type { MinuteRollups } from './minute-rollups.ts';
import { emptyRollup, mergeRollup, type Rollup } from './rollup.ts';
import { bucketLength, MINUTE_MS, type RollupStore, type StoredRollup } from './rollup-store.ts';
import type { SampleRing } from './sample-ring.ts';
import type { SeriesDefinition } from './series-definitions.ts';

/** The number of latency buckets a series' rollups hold (0 outside latency series). */
export function bucketCountOf(definition: SeriesDefinition, bounds: ArrayLike<number>): number {
  return definition.kind === 'latency' ? bounds.length + 1 : 0;
}

/**
 * Reads windows of a series: this instance's samples (the part of the window its ring holds,
 * from the ring's first whole minute) and minute rollups from memory, the other instances' rows
 * (and this instance's own rows older than its memory) from the database. Rows read for rules
 * are reused for `cacheMs`. While the database cannot be read, windows hold this instance only.
 */
export class WindowReader {
  readonly #store: RollupStore;
  readonly #instanceId: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #bounds: Float64Array;
  readonly #rings: ReadonlyMap<string, SampleRing>;
  readonly #minutes: MinuteRollups;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, { from: number; at: number; ownBefore: number; rows: StoredRollup[] }>();
  #failing = false;

  constructor(options: {
    store: RollupStore;
    instanceId: string;
    clock: Clock;
    logger: Logger;
    bounds: Float64Array;
    rings: ReadonlyMap<string, SampleRing>;
    minutes: MinuteRollups;
    cacheMs: number;
  }) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#bounds = options.bounds;
    this.#rings = options.rings;
    this.#minutes = options.minutes;
    this.#cacheMs = options.cacheMs;
  }

  /** Values of `count` windows of `stepMs` ending at `first`, `first + stepMs`, … (`cached`: rules). */
  async values(
    definition: SeriesDefinition,
    aggregation: Aggregation,
    window: { first: number; count: number; stepMs: number },
    cached: boolean,
  ): Promise<Array<number | null>> {
    const { first, count, stepMs } = window;
    const last = first + (count - 1) * stepMs;
    const start = first - stepMs;
    const bucketCount = bucketCountOf(definition, this.#bounds);
    const steps: Array<Map<string, Rollup>> = Array.from({ length: count }, () => new Map());
    // The rollup of the instance in the step whose window (t - stepMs, t] holds `time`.
    const at = (time: number, instanceId: string): Rollup | null => {
      if (time <= start || time > last) return null;
      const step = steps[Math.max(0, Math.ceil((time - first) / stepMs))];
      if (step === undefined) return null;
      let rollup = step.get(instanceId);
      if (rollup === undefined) {
        rollup = emptyRollup(bucketCount);
        step.set(instanceId, rollup);
      }
      return rollup;
    };
    const self = this.#instanceId;
    const ring = this.#rings.get(definition.name);
    const oldest = ring?.oldest() ?? null;
    // Once the ring has wrapped, its first minute is partial: the minute rollups answer before it.
    const ringFrom =
      ring?.wrapped && oldest !== null ? Math.ceil(oldest / MINUTE_MS) * MINUTE_MS : Number.NEGATIVE_INFINITY;
    ring?.forEach((t, position) => {
      const rollup = t >= ringFrom ? at(t, self) : null;
      if (rollup) ring.addTo(rollup, position);
    });
    this.#minutes.forEach(definition.name, (minuteStart, minute) => {
      const rollup = minuteStart < ringFrom ? at(minuteStart + MINUTE_MS / 2, self) : null;
      if (rollup) mergeRollup(rollup, minute);
    });
    for (const stored of await this.#remote(definition.name, start, last, cached)) {
      const rollup = at(stored.start + bucketLength(stored.resolution) / 2, stored.instanceId);
      if (rollup) mergeRollup(rollup, stored.rollup);
    }
    return steps.map((instances) =>
      aggregate(definition, aggregation, instances.values(), stepMs, this.#bounds),
    );
  }

  /**
   * Each series' newest value across instances: this instance's newest sample and each other
   * instance's last value in its minutes of the last two, combined as the series says.
   */
  async latest(definitions: readonly SeriesDefinition[]): Promise<Record<string, number | null>> {
    const since = Math.floor(this.#clock.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS;
    let rows: StoredRollup[] = [];
    try {
      rows = await this.#store.recent(since, this.#instanceId);
      this.#failing = false;
    } catch (error) {
      this.#readFailed(error);
    }
    // Per series and instance, the newest minute with a value.
    const newest = new Map<string, Map<string, StoredRollup>>();
    for (const stored of rows) {
      if (Number.isNaN(stored.rollup.last)) continue;
      let byInstance = newest.get(stored.series);
      if (byInstance === undefined) {
        byInstance = new Map();
        newest.set(stored.series, byInstance);
      }
      const known = byInstance.get(stored.instanceId);
      if (known === undefined || known.start < stored.start) byInstance.set(stored.instanceId, stored);
    }
    const result: Record<string, number | null> = {};
    for (const definition of definitions) {
      const values = [...(newest.get(definition.name)?.values() ?? [])].map((stored) => stored.rollup.last);
      const own = this.#rings.get(definition.name)?.latest();
      if (own && !Number.isNaN(own.value)) values.push(own.value);
      result[definition.name] = combine(definition.across, values);
    }
    return result;
  }

  /** Other instances' rows (and this one's older than its memory); none while the database fails. */
  async #remote(series: string, from: number, to: number, cached: boolean): Promise<StoredRollup[]> {
    const ownBefore = this.#minutes.oldestStart();
    const now = this.#clock.now();
    const hit = cached ? this.#cache.get(series) : undefined;
    if (hit && hit.from <= from && hit.ownBefore === ownBefore && now - hit.at < this.#cacheMs)
      return hit.rows;
    try {
      // Rows kept for rules are read without an upper bound, so later windows can reuse them.
      const rows = await this.#store.read(
        series,
        { from, to: cached ? undefined : to },
        { instanceId: this.#instanceId, ownBefore },
      );
      if (cached) this.#cache.set(series, { from, at: now, ownBefore, rows });
      this.#failing = false;
      return rows;
    } catch (error) {
      this.#readFailed(error);
      return [];
    }
  }

  // One warning per outage, not one per read.
  #readFailed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#logger.warn(
      { err: error, event: 'metric_history_read_failed' },
      'could not read metric rollups from the database; using this instance’s only',
    );
  }
}
