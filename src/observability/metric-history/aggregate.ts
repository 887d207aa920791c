import type { Aggregation } from '../../alerting/rules.ts';
import { histogramQuantile } from './histogram-quantile.ts';
import { emptyRollup, mergeRollup, type Rollup } from './rollup.ts';
import type { Across, SeriesDefinition, SeriesKind } from './series-definitions.ts';

const SUPPORTED: Readonly<Record<SeriesKind, readonly Aggregation[]>> = {
  counter: ['sum', 'rate', 'avg', 'max', 'min', 'last'],
  gauge: ['avg', 'max', 'min', 'last', 'sum'],
  ratio: ['ratio', 'avg', 'sum', 'rate', 'max', 'min', 'last'],
  latency: ['avg', 'p95', 'p99', 'max', 'min', 'last'],
};

/** The aggregations that give a value for a kind of series; any other answers null. */
export function supportedAggregations(kind: SeriesKind): readonly Aggregation[] {
  return SUPPORTED[kind];
}

/** Combines per-instance values as a series says; NaN (no value) is left out, none at all is null. */
export function combine(across: Across, values: readonly number[]): number | null {
  const present = values.filter((value) => !Number.isNaN(value));
  if (present.length === 0) return null;
  switch (across) {
    case 'sum':
      return present.reduce((total, value) => total + value, 0);
    case 'avg':
      return present.reduce((total, value) => total + value, 0) / present.length;
    case 'min':
      return Math.min(...present);
    case 'max':
      return Math.max(...present);
  }
}

const finite = (value: number): number | null => (Number.isFinite(value) ? value : null);
const divide = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

/**
 * Reduces one window to a value. `instances` holds each instance's merged rollup of the window.
 * Increases (counters, ratio parts, latency buckets) are added across instances; a gauge's `avg`
 * and every series' `last` are taken per instance, then combined as the series says (`across`);
 * `max` and `min` are the extremes any instance saw. Per kind:
 * - counter: `sum` the increase, `rate` it per second of the window, `avg`/`max`/`min`/`last`
 *   the per-sample increase;
 * - gauge: the readings (`sum` adds them up);
 * - ratio: `ratio` and `avg` Σnumerator/Σdenominator, `sum` and `rate` the numerator,
 *   `max`/`min`/`last` per-sample ratios;
 * - latency: `avg` the mean duration (Σsum/Σcount), `p95`/`p99` from the merged buckets,
 *   `max`/`min`/`last` the series' per-sample statistic.
 * Null when there is no data, or for an aggregation the kind does not support.
 */
export function aggregate(
  definition: SeriesDefinition,
  aggregation: Aggregation,
  instances: Iterable<Rollup>,
  windowMs: number,
  bounds: ArrayLike<number>,
): number | null {
  const parts = [...instances].filter((rollup) => rollup.count > 0);
  if (parts.length === 0 || !SUPPORTED[definition.kind].includes(aggregation)) return null;
  const total = emptyRollup(definition.kind === 'latency' ? bounds.length + 1 : 0);
  for (const part of parts) mergeRollup(total, part);
  const seconds = windowMs / 1000;
  switch (aggregation) {
    case 'max':
      return finite(total.max);
    case 'min':
      return finite(total.min);
    case 'last':
      return combine(
        definition.across,
        parts.map((part) => part.last),
      );
    case 'p95':
    case 'p99':
      return total.buckets
        ? histogramQuantile(aggregation === 'p95' ? 0.95 : 0.99, bounds, total.buckets)
        : null;
    case 'ratio':
      return divide(total.numerator, total.denominator);
    default:
      break;
  }
  switch (definition.kind) {
    case 'counter':
      if (aggregation === 'sum') return total.sum;
      if (aggregation === 'rate') return total.sum / seconds;
      return divide(total.sum, total.count);
    case 'gauge':
      if (aggregation === 'sum') return total.sum;
      return combine(
        definition.across,
        parts.map((part) => part.sum / part.count),
      );
    case 'ratio':
      if (aggregation === 'sum') return total.numerator;
      if (aggregation === 'rate') return total.numerator / seconds;
      return divide(total.numerator, total.denominator);
    case 'latency':
      return divide(total.histSum, total.histCount);
  }
}
