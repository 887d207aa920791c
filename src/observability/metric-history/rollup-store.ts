import type { Kysely } from 'kysely';
import type { DatabaseSchema, MetricRollupsTable } from '../../storage/schema.ts';
import { emptyRollup, mergeRollup, type Rollup } from './rollup.ts';

/** Bucket lengths of the two resolutions. */
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** A rollup as stored: one series, one bucket, one instance. */
export interface StoredRollup {
  series: string;
  resolution: '1m' | '1h';
  start: number;
  instanceId: string;
  rollup: Rollup;
}

// Rows per statement: 15 parameters a row stays far below SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT = 400;
const KEY = ['series', 'resolution', 'bucket_start', 'instance_id'] as const;

/** The length of a resolution's bucket. */
export function bucketLength(resolution: string): number {
  return resolution === '1h' ? HOUR_MS : MINUTE_MS;
}

function toRow(stored: StoredRollup, updatedAt: string): MetricRollupsTable {
  const rollup = stored.rollup;
  return {
    series: stored.series,
    resolution: stored.resolution,
    bucket_start: stored.start,
    instance_id: stored.instanceId,
    sample_count: rollup.count,
    value_sum: rollup.sum,
    value_min: Number.isFinite(rollup.min) ? rollup.min : null,
    value_max: Number.isFinite(rollup.max) ? rollup.max : null,
    value_last: Number.isNaN(rollup.last) ? null : rollup.last,
    numerator: rollup.numerator,
    denominator: rollup.denominator,
    hist_sum: rollup.histSum,
    hist_count: rollup.histCount,
    buckets: rollup.buckets ? JSON.stringify(Array.from(rollup.buckets)) : null,
    updated_at: updatedAt,
  };
}

function fromRow(row: MetricRollupsTable): StoredRollup {
  const buckets = row.buckets === null ? null : Float64Array.from(JSON.parse(row.buckets) as number[]);
  const start = Number(row.bucket_start);
  return {
    series: row.series,
    resolution: row.resolution === '1h' ? '1h' : '1m',
    start,
    instanceId: row.instance_id,
    rollup: {
      count: Number(row.sample_count),
      sum: Number(row.value_sum),
      min: row.value_min === null ? Number.POSITIVE_INFINITY : Number(row.value_min),
      max: row.value_max === null ? Number.NEGATIVE_INFINITY : Number(row.value_max),
      last: row.value_last === null ? Number.NaN : Number(row.value_last),
      // Within one instance buckets do not overlap, so the bucket's start orders them.
      lastAt: row.value_last === null ? Number.NEGATIVE_INFINITY : start,
      numerator: Number(row.numerator),
      denominator: Number(row.denominator),
      histSum: Number(row.hist_sum),
      histCount: Number(row.hist_count),
      buckets,
    },
  };
}

/**
 * The `metric_rollups` table: multi-row upserts of whole buckets (idempotent: a bucket is written
 * with its full state, never incremented), reads by window, and compaction of old minutes into
 * hours. The same queries run on SQLite and PostgreSQL.
 */
export class RollupStore {
  readonly #db: Kysely<DatabaseSchema>;

  constructor(db: Kysely<DatabaseSchema>) {
    this.#db = db;
  }

  /** Writes buckets (one statement per 400 rows, in one transaction when more). */
  async upsert(rollups: readonly StoredRollup[], now: number): Promise<void> {
    if (rollups.length === 0) return;
    const updatedAt = new Date(now).toISOString();
    const rows = rollups.map((stored) => toRow(stored, updatedAt));
    if (rows.length <= ROWS_PER_STATEMENT) return this.#upsertRows(this.#db, rows);
    await this.#db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        await this.#upsertRows(trx, rows.slice(i, i + ROWS_PER_STATEMENT));
      }
    });
  }

  async #upsertRows(db: Kysely<DatabaseSchema>, rows: MetricRollupsTable[]): Promise<void> {
    await db
      .insertInto('metric_rollups')
      .values(rows)
      .onConflict((conflict) =>
        conflict.columns([...KEY]).doUpdateSet((eb) => ({
          sample_count: eb.ref('excluded.sample_count'),
          value_sum: eb.ref('excluded.value_sum'),
          value_min: eb.ref('excluded.value_min'),
          value_max: eb.ref('excluded.value_max'),
          value_last: eb.ref('excluded.value_last'),
          numerator: eb.ref('excluded.numerator'),
          denominator: eb.ref('excluded.denominator'),
          hist_sum: eb.ref('excluded.hist_sum'),
          hist_count: eb.ref('excluded.hist_count'),
          buckets: eb.ref('excluded.buckets'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }

  /**
   * One series' buckets whose midpoint lies after `from` (and, when given, at or before `to`),
   * of every instance but `instanceId`, and of `instanceId` too before `ownBefore` (what this
   * process no longer, or never, held in memory).
   */
  async read(
    series: string,
    window: { from: number; to?: number },
    own: { instanceId: string; ownBefore: number },
  ): Promise<StoredRollup[]> {
    const { from, to } = window;
    const rows = await this.#db
      .selectFrom('metric_rollups')
      .selectAll()
      .where('series', '=', series)
      .where((eb) =>
        eb.or(
          (['1m', '1h'] as const).map((resolution) => {
            const half = bucketLength(resolution) / 2;
            const conditions = [eb('resolution', '=', resolution), eb('bucket_start', '>', from - half)];
            if (to !== undefined) conditions.push(eb('bucket_start', '<=', to - half));
            return eb.and(conditions);
          }),
        ),
      )
      .$if(Number.isFinite(own.ownBefore), (query) =>
        query.where((eb) =>
          eb.or([eb('instance_id', '!=', own.instanceId), eb('bucket_start', '<', own.ownBefore)]),
        ),
      )
      .execute();
    return rows.map(fromRow);
  }

  /** Every series' minute rows of the other instances from `since` on (for current values). */
  async recent(since: number, exceptInstanceId: string): Promise<StoredRollup[]> {
    const rows = await this.#db
      .selectFrom('metric_rollups')
      .selectAll()
      .where('resolution', '=', '1m')
      .where('bucket_start', '>=', since)
      .where('instance_id', '!=', exceptInstanceId)
      .execute();
    return rows.map(fromRow);
  }

  /**
   * Folds minute rows that start before `before` into hourly rows, one hour per transaction
   * (at most `maxHours` a call), then deletes hourly rows that start before `hourlyBefore`.
   * Safe when several instances run it at once: each hour's minute rows are deleted first (with
   * RETURNING), so a row is folded by exactly one transaction, and what it folds is merged into
   * whatever hourly row already exists.
   */
  async compact(options: { before: number; hourlyBefore: number; maxHours: number; now: number }): Promise<{
    hours: number;
    minuteRows: number;
    expiredHourRows: number;
  }> {
    const updatedAt = new Date(options.now).toISOString();
    const before = Math.floor(options.before / HOUR_MS) * HOUR_MS;
    let hours = 0;
    let minuteRows = 0;
    while (hours < options.maxHours) {
      const oldest = await this.#db
        .selectFrom('metric_rollups')
        .select((eb) => eb.fn.min('bucket_start').as('start'))
        .where('resolution', '=', '1m')
        .where('bucket_start', '<', before)
        .executeTakeFirst();
      if (oldest?.start === null || oldest?.start === undefined) break;
      const hour = Math.floor(Number(oldest.start) / HOUR_MS) * HOUR_MS;
      minuteRows += await this.#db.transaction().execute((trx) => this.#foldHour(trx, hour, updatedAt));
      hours += 1;
    }
    const expired = await this.#db
      .deleteFrom('metric_rollups')
      .where('resolution', '=', '1h')
      .where('bucket_start', '<', options.hourlyBefore)
      .executeTakeFirst();
    return { hours, minuteRows, expiredHourRows: Number(expired.numDeletedRows) };
  }

  async #foldHour(trx: Kysely<DatabaseSchema>, hour: number, updatedAt: string): Promise<number> {
    // Deleting first takes the rows (and, on SQLite, the write lock) before anything is read.
    const minutes = await trx
      .deleteFrom('metric_rollups')
      .where('resolution', '=', '1m')
      .where('bucket_start', '>=', hour)
      .where('bucket_start', '<', hour + HOUR_MS)
      .returningAll()
      .execute();
    if (minutes.length === 0) return 0;
    const existing = await trx
      .selectFrom('metric_rollups')
      .selectAll()
      .where('resolution', '=', '1h')
      .where('bucket_start', '=', hour)
      .execute();
    const folded = new Map<string, StoredRollup>();
    for (const stored of [...existing, ...minutes].map(fromRow)) {
      const key = `${stored.series}\u0000${stored.instanceId}`;
      let into = folded.get(key);
      if (into === undefined) {
        into = {
          series: stored.series,
          resolution: '1h',
          start: hour,
          instanceId: stored.instanceId,
          rollup: emptyRollup(stored.rollup.buckets?.length ?? 0),
        };
        folded.set(key, into);
      }
      mergeRollup(into.rollup, stored.rollup);
    }
    const rows = [...folded.values()].map((stored) => toRow(stored, updatedAt));
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      await this.#upsertRows(trx, rows.slice(i, i + ROWS_PER_STATEMENT));
    }
    return minutes.length;
  }
}
