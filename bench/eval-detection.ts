/**
 * Evaluation of the request attack detector (`npm run eval:detection`): detection and false
 * positives on the tuning corpus in every placement (query value, JSON body string, form field,
 * custom header), the cost of a typical request, and the time to inspect 1 MiB adversarial
 * bodies. Exits with 1 when a target is missed, so CI can run it.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  type AttackClass,
  createDetector,
  type Finding,
  type RequestParts,
} from '../src/protection/detection/index.ts';

const CORPUS_DIR =
  process.env.DETECTION_CORPUS ??
  fileURLToPath(new URL('../../shared/corpus/attack-detection', import.meta.url));
const TARGETS = {
  detection: 0.97,
  falsePositives: 0.005,
  typicalMicros: 10,
  adversarialMillis: 50,
} as const;

const CORPUS_FILES: readonly (readonly [AttackClass, string])[] = [
  ['sqli', 'sqli.jsonl'],
  ['xss', 'xss.jsonl'],
  ['cmdi', 'cmdi.jsonl'],
  ['path_traversal', 'path-traversal.jsonl'],
  ['ssrf', 'ssrf.jsonl'],
  ['nosqli', 'nosqli.jsonl'],
  ['prototype_pollution', 'prototype-pollution.jsonl'],
];

/** Hand-made probes for the classes the corpus has no file for (reported, not targets). */
const HANDMADE: readonly (readonly [AttackClass, readonly string[]])[] = [
  [
    'crlf',
    [
      '%0d%0aSet-Cookie:%20session=attacker',
      '\r\nLocation: https://evil.example/',
      'foo%0aContent-Length:%200%0a%0aHTTP/1.1%20200%20OK',
      'x%E5%98%8A%E5%98%8DSet-Cookie:%20a=b',
      'value\\r\\nX-Injected: 1',
      '%0D%0A%0D%0A<script>alert(1)</script>',
    ],
  ],
];

const BASE_HEADERS = {
  host: 'api.example.com',
  'user-agent':
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  accept: 'application/json, text/plain, */*',
  'accept-language': 'en-GB,en;q=0.9',
  'accept-encoding': 'gzip, deflate, br',
  connection: 'keep-alive',
  'x-request-id': '0f8b6c3e-2d5e-4c1a-9b7e-3f2a1c4d5e6f',
  authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl',
};

type Placement = 'query' | 'json' | 'form' | 'header';
const PLACEMENTS: readonly Placement[] = ['query', 'json', 'form', 'header'];

/** Header values cannot carry CR, LF or other controls (Node rejects them); tab is allowed. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if ((code < 32 && code !== 9) || code === 127) return true;
  }
  return false;
}

/** The request a client would send with `payload` in `placement`, as Fastify would hand it over. */
function requestWith(payload: string, placement: Placement): RequestParts | undefined {
  switch (placement) {
    case 'query': {
      const url = new URL(`https://api.example.com/api/v1/search?q=${encodeURIComponent(payload)}&page=2`);
      return {
        method: 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: BASE_HEADERS,
      };
    }
    case 'json':
      return {
        method: 'POST',
        path: '/api/v1/comments',
        query: {},
        headers: { ...BASE_HEADERS, 'content-type': 'application/json' },
        body: JSON.parse(JSON.stringify({ post: 42, data: { items: [{ text: payload, lang: 'en' }] } })),
      };
    case 'form': {
      const form = new URLSearchParams(`name=Ann&comment=${encodeURIComponent(payload)}`);
      return {
        method: 'POST',
        path: '/contact',
        query: {},
        headers: { ...BASE_HEADERS, 'content-type': 'application/x-www-form-urlencoded' },
        body: Object.fromEntries(form),
      };
    }
    case 'header': {
      if (hasControlCharacter(payload)) return undefined;
      // The client sends UTF-8 bytes; Node reads header bytes as Latin-1 and trims the value.
      const value = Buffer.from(payload, 'utf8').toString('latin1').trim();
      if (value === '') return undefined;
      return {
        method: 'GET',
        path: '/api/v1/search',
        query: {},
        headers: { ...BASE_HEADERS, 'x-search': value },
      };
    }
  }
}

function loadCorpus(file: string): string[] {
  return readFileSync(`${CORPUS_DIR}/${file}`, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { payload: string }).payload);
}

// Without the memory of clean values: every value is scored, as on first sight (the cost
// figures below would otherwise measure a cache hit).
const detector = createDetector({ benignCache: 0 });
// As the server runs it: values seen before (same headers, same path) are not scored again.
const serverDetector = createDetector();
const failures: string[] = [];

function percent(part: number, whole: number): string {
  return whole === 0 ? '  n/a' : `${((100 * part) / whole).toFixed(1).padStart(5)}%`;
}

function findingsFor(payload: string, placement: Placement): Finding[] | undefined {
  const request = requestWith(payload, placement);
  return request === undefined ? undefined : detector.inspect(request);
}

function evaluateDetection(): void {
  console.log('\nDetection (own class / any class), per placement');
  console.log(`${'class'.padEnd(20)}${PLACEMENTS.map((p) => p.padStart(22)).join('')}`);
  for (const [attackClass, payloads] of [
    ...CORPUS_FILES.map(([name, file]) => [name, loadCorpus(file)] as const),
    ...HANDMADE,
  ]) {
    const handmade = HANDMADE.some(([name]) => name === attackClass);
    const cells: string[] = [];
    for (const placement of PLACEMENTS) {
      let own = 0;
      let any = 0;
      let tried = 0;
      const missed: string[] = [];
      for (const payload of payloads) {
        const findings = findingsFor(payload, placement);
        if (findings === undefined) continue;
        tried += 1;
        if (findings.some((finding) => finding.class === attackClass)) own += 1;
        else missed.push(payload);
        if (findings.length > 0) any += 1;
      }
      cells.push(
        `${percent(own, tried)} /${percent(any, tried)} (${payloads.length - tried} skip)`.padStart(22),
      );
      if (!handmade && tried > 0 && own / tried < TARGETS.detection) {
        failures.push(`${attackClass} in ${placement}: ${percent(own, tried).trim()} detected`);
      }
      if (process.env.SHOW_MISSES === attackClass && placement === 'query') {
        for (const payload of missed) console.log(`   missed: ${JSON.stringify(payload).slice(0, 120)}`);
      }
    }
    console.log(`${(attackClass + (handmade ? ' (hand-made)' : '')).padEnd(20)}${cells.join('')}`);
  }
  console.log('  (skip: header placement cannot carry CR, LF or other control characters)');
}

function evaluateBenign(): void {
  const benign = loadCorpus('benign.jsonl');
  console.log(`\nBenign values flagged (${benign.length} values), per placement`);
  for (const placement of PLACEMENTS) {
    const flagged: string[] = [];
    let tried = 0;
    for (const value of benign) {
      const findings = findingsFor(value, placement);
      if (findings === undefined) continue;
      tried += 1;
      if (findings.length > 0) {
        const what = findings.map((f) => `${f.class}:${f.score}@${f.location}`).join(', ');
        flagged.push(`${JSON.stringify(value).slice(0, 90)} → ${what}`);
      }
    }
    console.log(`${placement.padEnd(8)} ${percent(flagged.length, tried)} (${flagged.length} of ${tried})`);
    for (const line of flagged) console.log(`         ${line}`);
    if (flagged.length / tried > TARGETS.falsePositives)
      failures.push(`benign in ${placement}: ${flagged.length} flagged`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const TYPICAL_GET: RequestParts = {
  method: 'GET',
  path: '/api/v1/orgs/abc/workflows',
  query: { limit: '20', cursor: 'xyz' },
  headers: {
    ...BASE_HEADERS,
    referer: 'https://console.example.com/orgs/abc/workflows',
    cookie: 'session=s%3AabcDEF123.xyz789; theme=dark',
    'sec-fetch-mode': 'cors',
  },
};

const TYPICAL_POST: RequestParts = {
  method: 'POST',
  path: '/api/v1/orgs/abc/members',
  query: {},
  headers: { ...BASE_HEADERS, 'content-type': 'application/json', 'content-length': '300' },
  body: {
    name: 'Jane Doe',
    email: 'jane.doe@example.com',
    phone: '+44 20 7946 0958',
    age: 34,
    role: 'editor',
    team: { id: 'team_8f3a2c', name: 'Growth' },
    address: { street: '221B Baker Street', city: 'London', postcode: 'NW1 6XE', country: 'GB' },
    tags: ['beta', 'newsletter'],
    active: true,
  },
};

function microsPerRequest(request: RequestParts, inspector = detector): number {
  const iterations = 20_000;
  const rounds = 15;
  for (let i = 0; i < iterations; i += 1) inspector.inspect(request); // warm-up
  const perRound: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const start = performance.now();
    for (let i = 0; i < iterations; i += 1) inspector.inspect(request);
    perRound.push(((performance.now() - start) * 1000) / iterations);
  }
  return median(perRound);
}

function evaluateTypicalCost(): void {
  console.log('\nTypical request cost (median of 15 rounds x 20,000, after warm-up)');
  for (const [name, request] of [
    ['GET with query and 10 headers', TYPICAL_GET],
    ['POST with a 300-byte JSON body', TYPICAL_POST],
  ] as const) {
    const findings = detector.inspect(request);
    if (findings.length > 0) failures.push(`typical ${name} has findings: ${JSON.stringify(findings)}`);
    const micros = microsPerRequest(request);
    const repeated = microsPerRequest(request, serverDetector);
    console.log(
      `  ${name.padEnd(34)} ${micros.toFixed(2).padStart(6)} µs` +
        ` (${repeated.toFixed(2)} µs when its values were seen before)`,
    );
    if (micros > TARGETS.typicalMicros) failures.push(`typical ${name}: ${micros.toFixed(2)} µs`);
  }
}

const MIB = 1 << 20;

function fill(unit: string): string {
  return unit.repeat(Math.ceil(MIB / unit.length)).slice(0, MIB);
}

/** A JSON text of about 1 MiB made of `item(0), item(1), …` between `open` and `close`. */
function jsonOfMiB(item: (index: number) => string, open: string, close: string): string {
  const items: string[] = [];
  let length = 2;
  for (let i = 0; length < MIB; i += 1) {
    const next = item(i);
    items.push(next);
    length += next.length + 1;
  }
  return `${open}${items.join(',')}${close}`;
}

function nestedArrays(depth: number): unknown {
  return JSON.parse(`${'['.repeat(depth)}"x"${']'.repeat(depth)}`);
}

const ADVERSARIAL: readonly (readonly [string, () => unknown])[] = [
  ["'<' x 1 MiB", () => fill('<')],
  ['"\'" x 1 MiB', () => fill("'")],
  ["'../' x 1 MiB", () => fill('../')],
  ["'%25' x 1 MiB", () => fill('%25')],
  ["'a' x 1 MiB", () => fill('a')],
  ["'(' x 1 MiB", () => fill('(')],
  ["'\\\\' x 1 MiB", () => fill('\\')],
  ["'<a ' x 1 MiB", () => fill('<a ')],
  ["'<a b=\"' x 1 MiB", () => fill('<a b="')],
  ["'{{' x 1 MiB", () => fill('{{')],
  ["'/*' x 1 MiB", () => fill('/*')],
  ["'&#x3c;' x 1 MiB", () => fill('&#x3c;')],
  ['"\' or 1=1 -- " x 1 MiB', () => fill("' or 1=1 -- ")],
  ["'; ls' x 1 MiB", () => fill('; ls')],
  ["'..%c0%af' x 1 MiB", () => fill('..%c0%af')],
  ["'\\r\\nX: y' x 1 MiB", () => fill('\r\nX: y')],
  ["'http://' x 1 MiB", () => fill('http://')],
  ["'javascript:' x 1 MiB", () => fill('javascript:')],
  ["'$' x 1 MiB", () => fill('$')],
  ["'__proto__' x 1 MiB", () => fill('__proto__')],
  ['nested arrays, depth 100,000', () => nestedArrays(100_000)],
  ['1 MiB JSON array of short strings', () => JSON.parse(jsonOfMiB((i) => `"v${i}"`, '[', ']'))],
  ['1 MiB JSON object of short keys', () => JSON.parse(jsonOfMiB((i) => `"k${i}":"v"`, '{', '}'))],
];

function evaluateAdversarial(): void {
  console.log('\nAdversarial 1 MiB bodies (inspect time; each also as a query value and a header)');
  for (const [name, make] of ADVERSARIAL) {
    const body = make();
    const requests: RequestParts[] = [
      { method: 'POST', path: '/api/v1/x', query: {}, headers: BASE_HEADERS, body },
    ];
    if (typeof body === 'string') {
      requests.push({ method: 'GET', path: '/api/v1/x', query: { q: body }, headers: BASE_HEADERS });
      requests.push({
        method: 'GET',
        path: '/api/v1/x',
        query: {},
        headers: { ...BASE_HEADERS, 'x-data': body },
      });
    }
    let worst = 0;
    for (const request of requests) {
      detector.inspect(request);
      const start = performance.now();
      detector.inspect(request);
      worst = Math.max(worst, performance.now() - start);
    }
    console.log(`  ${name.padEnd(34)} ${worst.toFixed(1).padStart(7)} ms`);
    if (worst > TARGETS.adversarialMillis) failures.push(`adversarial ${name}: ${worst.toFixed(1)} ms`);
  }
}

evaluateDetection();
evaluateBenign();
evaluateTypicalCost();
evaluateAdversarial();

if (failures.length > 0) {
  console.log(`\nTargets missed (${failures.length}):`);
  for (const failure of failures) console.log(`  - ${failure}`);
  process.exitCode = 1;
} else {
  console.log('\nAll targets met.');
}
