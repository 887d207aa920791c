import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { createDetector, type RequestParts } from './index.ts';

const MIB = 1 << 20;
/** Generous: the target is 50 ms (see `npm run eval:detection`); this only catches blow-ups. */
const BOUND_MS = 500;

function fill(unit: string): string {
  return unit.repeat(Math.ceil(MIB / unit.length)).slice(0, MIB);
}

const HEADERS = { host: 'api.example.com', 'user-agent': 'Mozilla/5.0' };

// Inputs that make backtracking regexes or naive rescans go quadratic or worse.
const ADVERSARIAL: readonly (readonly [string, string])[] = [
  ['<', fill('<')],
  ["'", fill("'")],
  ['../', fill('../')],
  ['%25', fill('%25')],
  ['a', fill('a')],
  ['(', fill('(')],
  ['\\', fill('\\')],
  ['<a b="', fill('<a b="')],
  ['{{', fill('{{')],
  ['/*', fill('/*')],
  ['&#x3c;', fill('&#x3c;')],
  ["' or 1=1 -- ", fill("' or 1=1 -- ")],
  ['..%c0%af', fill('..%c0%af')],
  ['\\r\\nX: y', fill('\r\nX: y')],
  ['http://', fill('http://')],
  ['javascript:', fill('javascript:')],
  ['$', fill('$')],
  ['; ls', fill('; ls')],
  ['a=a&', fill('a=a&')],
  ['0x2e', fill('0x2e')],
];

function timed(detector: ReturnType<typeof createDetector>, parts: RequestParts): number {
  const start = performance.now();
  detector.inspect(parts);
  return performance.now() - start;
}

describe('inspection time grows linearly with the input', () => {
  const detector = createDetector();

  it.each(ADVERSARIAL)('inspects 1 MiB of %j in the body, a query value and a header quickly', (_, value) => {
    const body: RequestParts = { method: 'POST', path: '/x', query: {}, headers: HEADERS, body: value };
    const query: RequestParts = { method: 'GET', path: '/x', query: { q: value }, headers: HEADERS };
    const header: RequestParts = {
      method: 'GET',
      path: '/x',
      query: {},
      headers: { ...HEADERS, 'x-data': value },
    };
    for (const parts of [body, query, header]) expect(timed(detector, parts)).toBeLessThan(BOUND_MS);
  });

  it('walks wide and deep JSON quickly', () => {
    const wide = Array.from({ length: 120_000 }, (_, i) => `v${i}`);
    const keys = Object.fromEntries(Array.from({ length: 80_000 }, (_, i) => [`k${i}`, 'v']));
    const deep = JSON.parse(`${'['.repeat(100_000)}"<script>"${']'.repeat(100_000)}`);
    for (const body of [wide, keys, deep]) {
      expect(timed(detector, { method: 'POST', path: '/x', query: {}, headers: HEADERS, body })).toBeLessThan(
        BOUND_MS,
      );
    }
  });
});
