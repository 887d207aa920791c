import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Aggregation } from '../../alerting/rules.ts';
import type { SeriesCatalog } from '../../alerting/service.ts';
import type { BastionConfig } from '../../config/schema.ts';
import type { Clock } from '../../core/clock.ts';
import type { DatabaseSchema } from '../../storage/schema.ts';
import type { FastHistogram } from '../fast-histogram.ts';
import { supportedAggregations } from './aggregate.ts';
import { MinuteRollups } from './minute-rollups.ts';
import { MINUTE_MS, RollupStore } from './rollup-store.ts';
import { RollupWriter } from './rollup-writer.ts';
import { SampleRing } from './sample-ring.ts';
import { type HostReaders, Sampler } from './sampler.ts';
import { type SeriesDefinition, type SeriesKind, seriesDefinitions } from './series-definitions.ts';
import { bucketCountOf, WindowReader } from './window-reader.ts';

/** Full-resolution samples kept per series. */
const RING_SPAN_MS = 15 * MINUTE_MS;
/** Minutes kept in memory: the longest default window (6 h burn rate) and a margin. */
const KEEP_MINUTES = 7 * 60;
const MAX_POINTS = 11_000;

/** What `MetricHistory` is built from. */
export interface MetricHistoryOptions {
  db: Kysely<DatabaseSchema>;
  registry: Registry;
  clock: Clock;
  logger: Logger;
  /** This process among the instances sharing the database; unique per process run (≤ 64 chars). */
  instanceId: string;
  config: BastionConfig;
  httpDuration: FastHistogram;
  /** When this process started, ms since the epoch (default: now minus `process.uptime()`). */
  processStartedAt?: number;
  /** CPU and event-loop readers (default: the host's and this process's; tests set their own). */
  host?: HostReaders;
  /** How long other instances' rows read for `evaluate` are reused, ms (default 5000; they flush every 10 s). */
  remoteCacheMs?: number;
}

/** A series as `list()` describes it. */
export interface SeriesInfo {
  name: string;
  unit: string;
  description: string;
  kind: SeriesKind;
  /** Aggregations that give a value; any other answers null. */
  aggregations: readonly Aggregation[];
}

/** A chart query: points at `from`, `from + stepMs`, … up to `to`, each over the step before it. */
export interface RangeQuery {
  from: number;
  to: number;
  stepMs: number;
  aggregation: Aggregation;
}

/**
 * The metric history behind alert rules and the console: every `sampleIntervalMs` each instance
 * samples every series, keeps fifteen minutes of samples and seven hours of minute rollups in
 * memory, and upserts its minutes to `metric_rollups` every 10 s (and as each minute ends).
 * Reads combine this instance's memory with the other instances' rows. Precision: a window this
 * instance's samples cover (up to 15 min) is exact for this instance; beyond that, and for other
 * instances always, whole buckets count when their midpoint lies in the window (±30 s for
 * minutes, ±30 min for the hourly rows that replace minutes after `retentionDays`), and other
 * instances' data is as fresh as their last flush (≤ 10 s).
 */
export class MetricHistory implements SeriesCatalog {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: BastionConfig['metricHistory'];
  readonly #bounds: Float64Array;
  readonly #definitions: readonly SeriesDefinition[];
  readonly #byName: ReadonlyMap<string, SeriesDefinition>;
  readonly #info: readonly SeriesInfo[];
  readonly #rings = new Map<string, SampleRing>();
  readonly #minutes: MinuteRollups;
  readonly #sampler: Sampler;
  readonly #writer: RollupWriter;
  readonly #reader: WindowReader;
  readonly #listeners = new Set<(at: number) => void>();
  #timer: NodeJS.Timeout | null = null;
  #sampling: Promise<void> | null = null;
  #droppedReported = 0;
  #closed = false;

  constructor(options: MetricHistoryOptions) {
    if (!/^[\x21-\x7e]{1,64}$/.test(options.instanceId))
      throw new TypeError('instanceId must be 1 to 64 printable characters without spaces');
    this.#clock = options.clock;
    this.#logger = options.logger.child({ component: 'metric-history' });
    this.#settings = options.config.metricHistory;
    this.#bounds = Float64Array.from(options.httpDuration.read().bounds);
    this.#definitions = seriesDefinitions({
      bounds: this.#bounds,
      latencyThresholdSeconds: options.config.alerts.slo.latencyThresholdMs / 1000,
    });
    this.#byName = new Map(this.#definitions.map((definition) => [definition.name, definition]));
    this.#info = this.#definitions.map(({ name, unit, description, kind }) => ({
      name,
      unit,
      description,
      kind,
      aggregations: supportedAggregations(kind),
    }));
    const capacity = Math.ceil(RING_SPAN_MS / this.#settings.sampleIntervalMs) + 1;
    for (const definition of this.#definitions) {
      this.#rings.set(definition.name, new SampleRing(capacity, bucketCountOf(definition, this.#bounds)));
    }
    this.#minutes = new MinuteRollups({ keepMinutes: KEEP_MINUTES, instanceId: options.instanceId });
    const startedAt = options.processStartedAt ?? options.clock.now() - process.uptime() * 1000;
    this.#sampler = new Sampler({
      registry: options.registry,
      httpDuration: options.httpDuration,
      definitions: this.#definitions,
      uptimeSeconds: () => (this.#clock.now() - startedAt) / 1000,
      host: options.host,
    });
    const store = new RollupStore(options.db);
    this.#writer = new RollupWriter({
      store,
      minutes: this.#minutes,
      clock: options.clock,
      logger: this.#logger,
      settings: this.#settings,
    });
    this.#reader = new WindowReader({
      store,
      instanceId: options.instanceId,
      clock: options.clock,
      logger: this.#logger,
      bounds: this.#bounds,
      rings: this.#rings,
      minutes: this.#minutes,
      cacheMs: options.remoteCacheMs ?? 5000,
    });
  }

  /** Takes a first sample, then samples every `sampleIntervalMs`, flushing and compacting as due. */
  async start(): Promise<void> {
    if (this.#timer || this.#closed) return;
    this.#writer.reset(this.#clock.now());
    await this.sampleNow();
    this.#timer = setInterval(() => void this.#tick(), this.#settings.sampleIntervalMs);
    this.#timer.unref();
  }

  /** Stops sampling and writes what the database lacks (a failure is logged, not thrown). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.idle();
    await this.flush();
  }

  /** Resolves once no sample, flush or compaction is running (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.#sampling || this.#writer.busy) {
      await Promise.all([this.#sampling, this.#writer.busy]);
    }
  }

  /** Every series, with its unit, description, kind and the aggregations that apply. */
  list(): readonly SeriesInfo[] {
    return this.#info;
  }

  /** Calls `listener` with the sample time right after each sample (rules evaluate then); returns an unsubscribe. */
  onSample(listener: (at: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Samples every series now (the timer's work; tests call it). Never overlaps itself. */
  sampleNow(): Promise<void> {
    this.#sampling ??= this.#sample().finally(() => {
      this.#sampling = null;
    });
    return this.#sampling;
  }

  /**
   * A series reduced over `(now - windowMs, now]`, across instances; null when there is no data,
   * the series is unknown or the aggregation does not apply to it. See the class for precision.
   */
  async evaluate(
    series: string,
    aggregation: Aggregation,
    windowMs: number,
    now = this.#clock.now(),
  ): Promise<number | null> {
    const definition = this.#byName.get(series);
    if (definition === undefined || !(windowMs > 0)) return null;
    const [value] = await this.#reader.values(
      definition,
      aggregation,
      { first: now, count: 1, stepMs: windowMs },
      true,
    );
    return value ?? null;
  }

  /** A series over time for charts; throws a TypeError for an unknown series or a bad range. */
  async range(series: string, query: RangeQuery): Promise<Array<{ t: number; value: number | null }>> {
    const definition = this.#byName.get(series);
    if (definition === undefined) throw new TypeError(`Unknown series "${series}"`);
    const { from, to, stepMs } = query;
    if (![from, to, stepMs].every(Number.isFinite) || stepMs <= 0 || to < from)
      throw new TypeError('range needs finite from ≤ to and a positive stepMs');
    const count = Math.floor((to - from) / stepMs) + 1;
    if (count > MAX_POINTS) throw new TypeError(`range asks for ${count} points; at most ${MAX_POINTS}`);
    const values = await this.#reader.values(
      definition,
      query.aggregation,
      { first: from, count, stepMs },
      false,
    );
    return values.map((value, k) => ({ t: from + k * stepMs, value }));
  }

  /**
   * Every series' newest value across instances, for the dashboard: this instance's newest
   * sample with the other instances' last values of the last two minutes, combined as each
   * series says (counters: the increase over one sample interval).
   */
  current(): Promise<Record<string, number | null>> {
    return this.#reader.latest(this.#definitions);
  }

  /** Writes every minute the database lacks; on failure keeps them for the next flush. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Folds minute rows older than `retentionDays` into hourly rows and drops expired hours. */
  compact(): Promise<void> {
    return this.#writer.compact();
  }

  async #tick(): Promise<void> {
    if (this.#closed || this.#sampling) return;
    await this.sampleNow();
    this.#writer.afterSample();
  }

  async #sample(): Promise<void> {
    const t = this.#clock.now();
    try {
      await this.#sampler.sample(t, (definition, sample) => {
        this.#rings.get(definition.name)?.push(sample);
        this.#minutes.add(definition.name, sample, bucketCountOf(definition, this.#bounds));
      });
    } catch (error) {
      // A series read that throws must not stop the timer; the series it broke has a gap.
      this.#logger.error({ err: error }, 'metric sample failed');
    }
    this.#minutes.trim(t);
    if (this.#minutes.dropped > this.#droppedReported) {
      this.#logger.warn(
        { event: 'metric_history_dropped', minutes: this.#minutes.dropped - this.#droppedReported },
        'metric minutes dropped from memory before the database could store them',
      );
      this.#droppedReported = this.#minutes.dropped;
    }
    for (const listener of this.#listeners) {
      try {
        listener(t);
      } catch (error) {
        this.#logger.error({ err: error }, 'metric sample listener failed');
      }
    }
  }
}
