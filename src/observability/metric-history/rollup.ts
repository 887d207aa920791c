/**
 * What every aggregation needs from a run of samples, mergeable: sample count, sum, min, max and
 * last of the per-sample value; numerator and denominator of ratio series; the latency buckets
 * (per bucket, not cumulative, the last one +Inf) with their sum and count. One sample, one
 * minute and one hour are all rollups, so a window is the merge of whatever parts cover it.
 */
export interface Rollup {
  /** Samples taken (with or without a value: a ratio without requests has none). */
  count: number;
  /** Sum of the samples' values. */
  sum: number;
  /** +Infinity when no sample had a value. */
  min: number;
  /** -Infinity when no sample had a value. */
  max: number;
  /** NaN when no sample had a value. */
  last: number;
  /** When `last` was taken (ms); -Infinity when none. */
  lastAt: number;
  numerator: number;
  denominator: number;
  histSum: number;
  histCount: number;
  buckets: Float64Array | null;
}

/** One sample of one series, as the sampler produces it. */
export interface Sample {
  t: number;
  /** NaN when the sample has no value (a ratio or a latency without requests). */
  value: number;
  numerator: number;
  denominator: number;
  histSum: number;
  histCount: number;
  /** Per-bucket counts of this sample's interval; null outside latency series. */
  buckets: Float64Array | null;
}

/** An empty rollup; `bucketCount` is 0 outside latency series. */
export function emptyRollup(bucketCount: number): Rollup {
  return {
    count: 0,
    sum: 0,
    min: Number.POSITIVE_INFINITY,
    max: Number.NEGATIVE_INFINITY,
    last: Number.NaN,
    lastAt: Number.NEGATIVE_INFINITY,
    numerator: 0,
    denominator: 0,
    histSum: 0,
    histCount: 0,
    buckets: bucketCount > 0 ? new Float64Array(bucketCount) : null,
  };
}

/** Adds one sample's value at time `t` (NaN: counted, without a value). */
export function addValue(rollup: Rollup, t: number, value: number): void {
  rollup.count += 1;
  if (Number.isNaN(value)) return;
  rollup.sum += value;
  if (value < rollup.min) rollup.min = value;
  if (value > rollup.max) rollup.max = value;
  if (t >= rollup.lastAt) {
    rollup.last = value;
    rollup.lastAt = t;
  }
}

/** Adds a whole sample. */
export function addSample(rollup: Rollup, sample: Sample): void {
  addValue(rollup, sample.t, sample.value);
  rollup.numerator += sample.numerator;
  rollup.denominator += sample.denominator;
  rollup.histSum += sample.histSum;
  rollup.histCount += sample.histCount;
  if (sample.buckets) addBuckets(rollup, sample.buckets);
}

/** Merges `from` into `into` (the later `last` wins). */
export function mergeRollup(into: Rollup, from: Rollup): void {
  into.count += from.count;
  into.sum += from.sum;
  if (from.min < into.min) into.min = from.min;
  if (from.max > into.max) into.max = from.max;
  if (!Number.isNaN(from.last) && from.lastAt >= into.lastAt) {
    into.last = from.last;
    into.lastAt = from.lastAt;
  }
  into.numerator += from.numerator;
  into.denominator += from.denominator;
  into.histSum += from.histSum;
  into.histCount += from.histCount;
  if (from.buckets) addBuckets(into, from.buckets);
}

/** Adds bucket counts; a layout of another length (another version's buckets) is left out. */
export function addBuckets(rollup: Rollup, buckets: ArrayLike<number>): void {
  const into = rollup.buckets;
  if (into === null || into.length !== buckets.length) return;
  for (let i = 0; i < into.length; i += 1) into[i] = (into[i] as number) + (buckets[i] as number);
}
