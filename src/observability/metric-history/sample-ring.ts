import { addBuckets, addValue, type Rollup, type Sample } from './rollup.ts';

/**
 * One series' samples at full resolution, newest overwriting oldest once `capacity` is reached.
 * Columns are typed arrays, so fifteen minutes of a second-by-second series is a few flat
 * buffers rather than hundreds of objects.
 */
export class SampleRing {
  readonly capacity: number;
  readonly #bucketCount: number;
  readonly #t: Float64Array;
  readonly #value: Float64Array;
  readonly #numerator: Float64Array;
  readonly #denominator: Float64Array;
  readonly #histSum: Float64Array;
  readonly #histCount: Float64Array;
  readonly #buckets: Float64Array | null;
  #next = 0;
  #size = 0;
  #wrapped = false;

  constructor(capacity: number, bucketCount: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new TypeError('capacity must be a positive integer');
    this.capacity = capacity;
    this.#bucketCount = bucketCount;
    this.#t = new Float64Array(capacity);
    this.#value = new Float64Array(capacity);
    this.#numerator = new Float64Array(capacity);
    this.#denominator = new Float64Array(capacity);
    this.#histSum = new Float64Array(capacity);
    this.#histCount = new Float64Array(capacity);
    this.#buckets = bucketCount > 0 ? new Float64Array(capacity * bucketCount) : null;
  }

  get size(): number {
    return this.#size;
  }

  /** Whether samples were overwritten, so the ring no longer reaches back to the first one. */
  get wrapped(): boolean {
    return this.#wrapped;
  }

  /** Stores a sample (its buckets are copied). */
  push(sample: Sample): void {
    const i = this.#next;
    this.#t[i] = sample.t;
    this.#value[i] = sample.value;
    this.#numerator[i] = sample.numerator;
    this.#denominator[i] = sample.denominator;
    this.#histSum[i] = sample.histSum;
    this.#histCount[i] = sample.histCount;
    if (this.#buckets && sample.buckets) this.#buckets.set(sample.buckets, i * this.#bucketCount);
    this.#next = (i + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size += 1;
    else this.#wrapped = true;
  }

  /** Time of the oldest kept sample, or null when empty. */
  oldest(): number | null {
    return this.#size === 0 ? null : (this.#t[this.#slot(0)] as number);
  }

  /** The newest sample's time and value, or null when empty. */
  latest(): { t: number; value: number } | null {
    if (this.#size === 0) return null;
    const i = this.#slot(this.#size - 1);
    return { t: this.#t[i] as number, value: this.#value[i] as number };
  }

  /** Calls `visit` with each kept sample's time and position, oldest first. */
  forEach(visit: (t: number, position: number) => void): void {
    for (let k = 0; k < this.#size; k += 1) {
      const i = this.#slot(k);
      visit(this.#t[i] as number, i);
    }
  }

  /** Adds the sample at `position` (from `forEach`) to a rollup. */
  addTo(rollup: Rollup, position: number): void {
    const i = position;
    addValue(rollup, this.#t[i] as number, this.#value[i] as number);
    rollup.numerator += this.#numerator[i] as number;
    rollup.denominator += this.#denominator[i] as number;
    rollup.histSum += this.#histSum[i] as number;
    rollup.histCount += this.#histCount[i] as number;
    if (this.#buckets) {
      const start = i * this.#bucketCount;
      addBuckets(rollup, this.#buckets.subarray(start, start + this.#bucketCount));
    }
  }

  #slot(k: number): number {
    return (this.#next - this.#size + k + this.capacity) % this.capacity;
  }
}
