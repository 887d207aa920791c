import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from './fast-histogram.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];
const OPTIONS = {
  name: 'req_seconds',
  help: 'Request duration.',
  labelNames: ['method', 'route'],
  buckets: BUCKETS,
};

describe('FastHistogram', () => {
  it("exposes exactly what prom-client's Histogram exposes for the same observations", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    for (const registry of [theirs, ours]) registry.setDefaultLabels({ instance: 'a' });
    const reference = new Histogram({ ...OPTIONS, registers: [theirs] });
    const fast = new FastHistogram({ ...OPTIONS, registers: [ours] });
    const values = [0, 0.0005, 0.001, 0.0010001, 0.05, 0.1, 0.7, 1, 9.99, 10, 11, 1e6];
    for (const [method, route] of [
      ['GET', '/a'],
      ['POST', '/b "quoted"\\'],
    ] as const) {
      const series = fast.series({ method, route });
      for (const value of values) {
        reference.observe({ method, route }, value);
        series.observe(value);
      }
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('reuses one series per label set, and refuses other label names or bad values', () => {
    const fast = new FastHistogram({ ...OPTIONS, registers: [] });
    expect(fast.series({ method: 'GET', route: '/a' })).toBe(fast.series({ route: '/a', method: 'GET' }));
    expect(() => fast.series({ method: 'GET' })).toThrow(/labels/);
    expect(() => fast.series({ method: 'GET', path: '/a' })).toThrow(/labels/);
    expect(() => fast.series({ method: 'GET', route: '/a' }).observe(Number.NaN)).toThrow(/number/);
    expect(() => new FastHistogram({ ...OPTIONS, buckets: [1, 1], registers: [] })).toThrow(/increasing/);
  });

  it('zeroes its series on reset and keeps counting into them', async () => {
    const registry = new Registry();
    const fast = new FastHistogram({ ...OPTIONS, registers: [registry] });
    const series = fast.series({ method: 'GET', route: '/a' });
    series.observe(0.5);
    registry.resetMetrics();
    series.observe(2);
    const text = await registry.metrics();
    expect(text).toContain('req_seconds_count{method="GET",route="/a"} 1');
    expect(text).toContain('req_seconds_sum{method="GET",route="/a"} 2');
  });
});
