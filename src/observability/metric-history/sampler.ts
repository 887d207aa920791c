import type { Registry } from 'prom-client';
import type { FastHistogram } from '../fast-histogram.ts';
import { cpuUtilizationReader, eventLoopUtilizationReader } from '../system-metrics.ts';
import { histogramQuantile } from './histogram-quantile.ts';
import type { Sample } from './rollup.ts';
import type { HttpTotals, Labels, Readings, SeriesDefinition } from './series-definitions.ts';

/** Busy ratios (0–1) since each reader's previous call. */
export interface HostReaders {
  cpu: () => number;
  eventLoop: () => number;
}

type MetricValues = ReadonlyArray<{ value: number; labels: Labels; metricName?: string }>;

/** A cumulative value's increase; a value that went down was reset, so all of it is new. */
function increase(current: number, previous: number | undefined): number {
  if (previous === undefined || current < previous) return current;
  return current - previous;
}

/**
 * Reads every series from the live process once per call: each registry metric the table names
 * (read once, whatever number of series use it), and the request-duration histogram summed over
 * its label sets directly. Counters become increases since the previous call; counters start
 * from zero, as they do with the process. A series whose metric is not registered (WebSocket
 * metrics in a build without them, pool gauges on SQLite) gives no sample.
 */
export class Sampler {
  readonly #registry: Registry;
  readonly #histogram: FastHistogram;
  readonly #definitions: readonly SeriesDefinition[];
  readonly #uptimeSeconds: () => number;
  readonly #cpu: () => number;
  readonly #eventLoop: () => number;
  readonly #metricNames: readonly string[];
  readonly #previous = new Map<string, number>();
  readonly #bounds: Float64Array;
  #previousHttp: { count: number; sum: number; buckets: Float64Array } | null = null;

  constructor(options: {
    registry: Registry;
    httpDuration: FastHistogram;
    definitions: readonly SeriesDefinition[];
    uptimeSeconds: () => number;
    /** CPU and event-loop readers (default: this process's, with their own baselines). */
    host?: HostReaders;
  }) {
    this.#cpu = options.host?.cpu ?? cpuUtilizationReader();
    this.#eventLoop = options.host?.eventLoop ?? eventLoopUtilizationReader();
    this.#registry = options.registry;
    this.#histogram = options.httpDuration;
    this.#definitions = options.definitions;
    this.#uptimeSeconds = options.uptimeSeconds;
    this.#metricNames = [...new Set(options.definitions.flatMap((definition) => definition.metrics))];
    this.#bounds = options.httpDuration.read().bounds;
  }

  /** Reads every series at time `t` and hands each sample to `emit` (the sample is reused: copy it). */
  async sample(t: number, emit: (definition: SeriesDefinition, sample: Sample) => void): Promise<void> {
    const fetched = new Map<string, MetricValues>();
    await Promise.all(
      this.#metricNames.map(async (name) => {
        const metric = this.#registry.getSingleMetric(name);
        if (!metric) return;
        try {
          fetched.set(name, (await metric.get()).values);
        } catch {
          // A collect callback that throws leaves its series without a sample, not the others.
        }
      }),
    );
    const http = this.#httpTotals();
    const readings: Readings = {
      total(metric, keep, sampleName) {
        const values = fetched.get(metric);
        if (values === undefined) return null;
        let total = 0;
        for (const value of values) {
          if (sampleName !== undefined && value.metricName !== sampleName) continue;
          if (keep && !keep(value.labels)) continue;
          total += value.value;
        }
        return total;
      },
      http,
      uptimeSeconds: this.#uptimeSeconds(),
      cpu: this.#cpu(),
      eventLoop: this.#eventLoop(),
    };
    const delta = this.#httpDelta(http);
    const sample: Sample = {
      t,
      value: Number.NaN,
      numerator: 0,
      denominator: 0,
      histSum: 0,
      histCount: 0,
      buckets: null,
    };
    for (const definition of this.#definitions) {
      sample.value = Number.NaN;
      sample.numerator = 0;
      sample.denominator = 0;
      sample.histSum = 0;
      sample.histCount = 0;
      sample.buckets = null;
      switch (definition.kind) {
        case 'counter': {
          const current = definition.read(readings);
          if (current === null) continue;
          sample.value = increase(current, this.#previous.get(definition.name));
          this.#previous.set(definition.name, current);
          break;
        }
        case 'gauge': {
          const current = definition.read(readings);
          if (current === null || Number.isNaN(current)) continue;
          sample.value = current;
          break;
        }
        case 'ratio': {
          const numerator = definition.numerator(readings);
          const denominator = definition.denominator(readings);
          if (numerator === null || denominator === null) continue;
          const numeratorKey = `${definition.name}#numerator`;
          const denominatorKey = `${definition.name}#denominator`;
          sample.numerator = increase(numerator, this.#previous.get(numeratorKey));
          sample.denominator = increase(denominator, this.#previous.get(denominatorKey));
          this.#previous.set(numeratorKey, numerator);
          this.#previous.set(denominatorKey, denominator);
          sample.value = sample.denominator > 0 ? sample.numerator / sample.denominator : Number.NaN;
          break;
        }
        case 'latency': {
          sample.histSum = delta.sum;
          sample.histCount = delta.count;
          sample.buckets = delta.buckets;
          sample.value = this.#statistic(definition.statistic, delta);
          break;
        }
      }
      emit(definition, sample);
    }
  }

  #statistic(
    statistic: 'avg' | 'p95' | 'p99',
    delta: { count: number; sum: number; buckets: Float64Array },
  ): number {
    if (delta.count <= 0) return Number.NaN;
    if (statistic === 'avg') return delta.sum / delta.count;
    return histogramQuantile(statistic === 'p95' ? 0.95 : 0.99, this.#bounds, delta.buckets) ?? Number.NaN;
  }

  #httpTotals(): HttpTotals {
    const buckets = new Float64Array(this.#bounds.length + 1);
    const byClass = new Float64Array(6);
    let count = 0;
    let sum = 0;
    for (const series of this.#histogram.read().series) {
      const counts = series.counts;
      for (let i = 0; i < counts.length; i += 1) buckets[i] = (buckets[i] as number) + (counts[i] as number);
      count += series.count;
      sum += series.sum;
      const digit = (series.labels.status_code ?? '').charCodeAt(0) - 48;
      if (digit >= 1 && digit <= 5) byClass[digit] = (byClass[digit] as number) + series.count;
    }
    return { count, sum, buckets, byClass };
  }

  /** This interval's requests; a histogram whose count went down was reset, so all of it is new. */
  #httpDelta(http: HttpTotals): { count: number; sum: number; buckets: Float64Array } {
    const previous = this.#previousHttp;
    this.#previousHttp = { count: http.count, sum: http.sum, buckets: http.buckets };
    if (previous === null || http.count < previous.count) {
      return { count: http.count, sum: http.sum, buckets: http.buckets };
    }
    const buckets = new Float64Array(http.buckets.length);
    for (let i = 0; i < buckets.length; i += 1) {
      buckets[i] = Math.max(0, (http.buckets[i] as number) - ((previous.buckets[i] as number) ?? 0));
    }
    return { count: http.count - previous.count, sum: http.sum - previous.sum, buckets };
  }
}
