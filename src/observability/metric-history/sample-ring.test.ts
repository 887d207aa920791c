import { describe, expect, it } from 'vitest';
import { emptyRollup } from './rollup.ts';
import { SampleRing } from './sample-ring.ts';

const sample = (t: number, value: number, buckets: number[] | null = null) => ({
  t,
  value,
  numerator: 1,
  denominator: 1,
  histSum: 0,
  histCount: 0,
  buckets: buckets ? Float64Array.from(buckets) : null,
});

describe('SampleRing', () => {
  it('keeps the newest `capacity` samples, oldest first, and says when it wrapped', () => {
    const ring = new SampleRing(3, 0);
    for (const t of [1, 2, 3]) ring.push(sample(t, t * 10));
    expect(ring.wrapped).toBe(false);
    ring.push(sample(4, 40));
    expect(ring.wrapped).toBe(true);
    expect(ring.oldest()).toBe(2);
    expect(ring.latest()).toEqual({ t: 4, value: 40 });
    const seen: number[] = [];
    ring.forEach((t) => {
      seen.push(t);
    });
    expect(seen).toEqual([2, 3, 4]);
  });

  it('adds kept samples, buckets included, to a rollup', () => {
    const ring = new SampleRing(2, 3);
    ring.push(sample(1, 5, [1, 0, 0]));
    ring.push(sample(2, Number.NaN, [0, 2, 1]));
    ring.push(sample(3, 7, [0, 0, 4]));
    const rollup = emptyRollup(3);
    ring.forEach((_t, position) => {
      ring.addTo(rollup, position);
    });
    expect(rollup.count).toBe(2);
    expect(rollup.sum).toBe(7);
    expect(rollup.last).toBe(7);
    expect(rollup.numerator).toBe(2);
    expect(rollup.denominator).toBe(2);
    expect(Array.from(rollup.buckets ?? [])).toEqual([0, 2, 5]);
  });
});
