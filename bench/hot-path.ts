/**
 * The hand-written fast versions on the per-request path against the library each replaces,
 * in one process, one after the other (`npm run bench:hot-path`):
 * - a per-address limit: Bastion's synchronous LocalRateLimiter vs rate-limiter-flexible's
 *   RateLimiterMemory (awaited, as a request must), both counting the same fixed windows;
 * - one latency observation: FastHistogram's series vs a prom-client Histogram label child.
 * Each pair must keep its answers equal (checked here) and the fast side must be faster.
 */
import { performance } from 'node:perf_hooks';
import { Histogram, Registry } from 'prom-client';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { systemClock } from '../src/core/clock.ts';
import { FastHistogram } from '../src/observability/fast-histogram.ts';
import { LocalRateLimiter } from '../src/protection/local-rate-limiter.ts';

const ITERATIONS = 200_000;
const ROUNDS = 7;
const KEYS = Array.from({ length: 64 }, (_, i) => `192.0.2.${i}`);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Median ns per call; a call that answers with a promise is awaited, as a request would. */
async function nsPerOp(run: (i: number) => unknown): Promise<number> {
  const awaited = run(0) instanceof Promise;
  const loop = awaited
    ? async () => {
        for (let i = 0; i < ITERATIONS; i += 1) await run(i);
      }
    : async () => {
        for (let i = 0; i < ITERATIONS; i += 1) run(i);
      };
  await loop(); // warm-up
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const start = performance.now();
    await loop();
    rounds.push(((performance.now() - start) * 1e6) / ITERATIONS);
  }
  return median(rounds);
}

const failures: string[] = [];

async function compare(
  what: string,
  library: [string, (i: number) => unknown],
  fast: [string, (i: number) => unknown],
): Promise<void> {
  const slow = await nsPerOp(library[1]);
  const quick = await nsPerOp(fast[1]);
  console.log(`${what}`);
  console.log(`  ${library[0].padEnd(44)} ${slow.toFixed(0).padStart(6)} ns/op`);
  console.log(
    `  ${fast[0].padEnd(44)} ${quick.toFixed(0).padStart(6)} ns/op  (${(slow / quick).toFixed(1)}x)`,
  );
  if (quick >= slow) failures.push(`${what}: the fast version is not faster`);
}

// Rate limiting: same rule, same keys, same answers.
const rule = { points: 1_000_000_000, durationSeconds: 60 };
const memory = new RateLimiterMemory({ points: rule.points, duration: rule.durationSeconds });
const local = new LocalRateLimiter({ ...rule, clock: systemClock });
{
  const check = new LocalRateLimiter({ points: 3, durationSeconds: 60, clock: systemClock });
  const reference = new RateLimiterMemory({ points: 3, duration: 60 });
  for (let i = 0; i < 5; i += 1) {
    const ours = check.take('k');
    const theirs = await reference.consume('k').then(
      (result) => ({ allowed: true, remaining: result.remainingPoints }),
      (result: { remainingPoints: number }) => ({ allowed: false, remaining: result.remainingPoints }),
    );
    if (ours.allowed !== theirs.allowed || ours.remaining !== theirs.remaining) {
      failures.push(`rate limit answers differ at request ${i + 1}`);
    }
  }
}
await compare(
  'one per-address rate limit check',
  ['rate-limiter-flexible RateLimiterMemory (await)', (i) => memory.consume(KEYS[i & 63] as string)],
  ['LocalRateLimiter.take (synchronous)', (i) => local.take(KEYS[i & 63] as string)],
);

// One latency observation into the request-duration histogram.
const labels = { method: 'GET', route: '/api/v1/items/:id', status_code: '200' };
const options = {
  name: 'bench_duration_seconds',
  help: 'Bench.',
  labelNames: ['method', 'route', 'status_code'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
};
const theirRegistry = new Registry();
const ourRegistry = new Registry();
const child = new Histogram({
  ...options,
  labelNames: [...options.labelNames],
  registers: [theirRegistry],
}).labels(labels);
const series = new FastHistogram({ ...options, registers: [ourRegistry] }).series(labels);
await compare(
  'one request-duration observation',
  ['prom-client Histogram label child .observe', (i) => child.observe((i % 300) / 1000)],
  ['FastHistogram series .observe', (i) => series.observe((i % 300) / 1000)],
);
if (
  (await theirRegistry.metrics()).replaceAll('bench_duration', '') !==
  (await ourRegistry.metrics()).replaceAll('bench_duration', '')
) {
  failures.push('the two histograms expose different values');
}

if (failures.length > 0) {
  console.error(`\nFAILED:\n- ${failures.join('\n- ')}`);
  process.exitCode = 1;
}
