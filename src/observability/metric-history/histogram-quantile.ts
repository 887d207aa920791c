/**
 * The `q` quantile (0–1) of per-bucket counts (not cumulative; the last bucket is +Inf) with
 * upper `bounds`, interpolated linearly within the bucket that holds the rank, as Prometheus'
 * `histogram_quantile` does: the first bucket starts at 0, and a rank in the +Inf bucket answers
 * the highest finite bound. Null when there are no observations.
 */
export function histogramQuantile(
  q: number,
  bounds: ArrayLike<number>,
  counts: ArrayLike<number>,
): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i += 1) total += counts[i] as number;
  if (total <= 0 || bounds.length === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i += 1) {
    const inBucket = counts[i] as number;
    if (below + inBucket >= rank && inBucket > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1] as number;
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      const upper = bounds[i] as number;
      return lower + ((upper - lower) * (rank - below)) / inBucket;
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1] as number;
}
