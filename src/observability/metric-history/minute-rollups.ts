import { addSample, emptyRollup, type Rollup, type Sample } from './rollup.ts';
import { MINUTE_MS, type StoredRollup } from './rollup-store.ts';

/** One minute of this instance's series, and whether the database has its latest state. */
interface Minute {
  start: number;
  rollups: Map<string, Rollup>;
  /** Bumped by every sample; the database has the minute when it equals `storedVersion`. */
  version: number;
  storedVersion: number;
}

/** A snapshot of what the database lacks, and how to mark it stored once written. */
export interface PendingRollups {
  rollups: StoredRollup[];
  markStored(): void;
}

function copy(rollup: Rollup): Rollup {
  return { ...rollup, buckets: rollup.buckets ? rollup.buckets.slice() : null };
}

/**
 * This instance's per-minute rollups, kept in memory for `keepMinutes` (the longest window rules
 * read from memory), with what is not yet in the database tracked per minute. A minute dropped
 * from memory before it could be written is counted in `dropped`.
 */
export class MinuteRollups {
  readonly #keepMs: number;
  readonly #instanceId: string;
  readonly #minutes = new Map<number, Minute>();
  dropped = 0;

  constructor(options: { keepMinutes: number; instanceId: string }) {
    this.#keepMs = options.keepMinutes * MINUTE_MS;
    this.#instanceId = options.instanceId;
  }

  /** Adds a sample to its minute (`bucketCount` sizes a new latency rollup). */
  add(series: string, sample: Sample, bucketCount: number): void {
    const start = Math.floor(sample.t / MINUTE_MS) * MINUTE_MS;
    let minute = this.#minutes.get(start);
    if (minute === undefined) {
      minute = { start, rollups: new Map(), version: 0, storedVersion: 0 };
      this.#minutes.set(start, minute);
    }
    let rollup = minute.rollups.get(series);
    if (rollup === undefined) {
      rollup = emptyRollup(bucketCount);
      minute.rollups.set(series, rollup);
    }
    addSample(rollup, sample);
    minute.version += 1;
  }

  /** Forgets minutes older than the kept span before `now`. */
  trim(now: number): void {
    const oldest = Math.floor(now / MINUTE_MS) * MINUTE_MS - this.#keepMs;
    for (const [start, minute] of this.#minutes) {
      if (start >= oldest) continue;
      if (minute.version !== minute.storedVersion) this.dropped += 1;
      this.#minutes.delete(start);
    }
  }

  /** Start of the oldest minute held (+Infinity when none): older ones are only in the database. */
  oldestStart(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const start of this.#minutes.keys()) if (start < oldest) oldest = start;
    return oldest;
  }

  /** Calls `visit` with each held minute's rollup of `series`. */
  forEach(series: string, visit: (start: number, rollup: Rollup) => void): void {
    for (const minute of this.#minutes.values()) {
      const rollup = minute.rollups.get(series);
      if (rollup !== undefined) visit(minute.start, rollup);
    }
  }

  /** Copies of every minute the database lacks (finished and current); nothing when up to date. */
  pending(): PendingRollups {
    const minutes = [...this.#minutes.values()].filter((minute) => minute.version !== minute.storedVersion);
    const versions = minutes.map((minute) => minute.version);
    const rollups: StoredRollup[] = [];
    for (const minute of minutes) {
      for (const [series, rollup] of minute.rollups) {
        rollups.push({
          series,
          resolution: '1m',
          start: minute.start,
          instanceId: this.#instanceId,
          rollup: copy(rollup),
        });
      }
    }
    return {
      rollups,
      markStored: () => {
        minutes.forEach((minute, i) => {
          minute.storedVersion = versions[i] as number;
        });
      },
    };
  }
}
