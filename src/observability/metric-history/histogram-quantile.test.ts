import { describe, expect, it } from 'vitest';
import { histogramQuantile } from './histogram-quantile.ts';

const BOUNDS = [0.1, 0.5, 1];

describe('histogramQuantile', () => {
  it('interpolates linearly inside the bucket holding the rank, like histogram_quantile', () => {
    const counts = [10, 80, 10, 0];
    expect(histogramQuantile(0.95, BOUNDS, counts)).toBeCloseTo(0.75, 12); // 0.5 + 0.5 × 5/10
    expect(histogramQuantile(0.99, BOUNDS, counts)).toBeCloseTo(0.95, 12); // 0.5 + 0.5 × 9/10
    expect(histogramQuantile(0.5, BOUNDS, counts)).toBeCloseTo(0.3, 12); // 0.1 + 0.4 × 40/80
  });

  it('starts the first bucket at 0, answers the highest bound for the +Inf bucket, null when empty', () => {
    expect(histogramQuantile(0.5, BOUNDS, [10, 0, 0, 0])).toBeCloseTo(0.05, 12);
    expect(histogramQuantile(0.95, BOUNDS, [1, 0, 0, 19])).toBe(1);
    expect(histogramQuantile(0.95, BOUNDS, [0, 0, 0, 0])).toBeNull();
  });

  it('skips empty buckets between the rank and the bucket that holds it', () => {
    // 50 observations ≤ 0.1, none in (0.1, 0.5], 50 in (0.5, 1]: the median is the top of the first.
    expect(histogramQuantile(0.5, BOUNDS, [50, 0, 50, 0])).toBeCloseTo(0.1, 12);
    expect(histogramQuantile(0.6, BOUNDS, [50, 0, 50, 0])).toBeCloseTo(0.6, 12); // 0.5 + 0.5 × 10/50
  });
});
