import { describe, expect, it } from 'vitest';
import { createDetector, type Finding, type RequestParts } from './index.ts';

const HEADERS = {
  host: 'api.example.com',
  'user-agent':
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  accept: 'application/json',
  'x-request-id': '0f8b6c3e-2d5e-4c1a-9b7e-3f2a1c4d5e6f',
};

function request(parts: Partial<RequestParts>): RequestParts {
  return { method: 'GET', path: '/api/v1/items', query: {}, headers: HEADERS, ...parts };
}

const where = (findings: Finding[]): string[] =>
  findings.map((finding) => `${finding.class}@${finding.location}`);

describe('createDetector().inspect', () => {
  const detector = createDetector();

  it('finds nothing in a clean request', () => {
    expect(
      detector.inspect(
        request({
          query: { limit: '20', cursor: 'xyz' },
          headers: {
            ...HEADERS,
            referer: 'https://app.example.com/items',
            cookie: 'session=s%3Aabc.def; theme=dark',
          },
        }),
      ),
    ).toEqual([]);
    expect(
      detector.inspect(
        request({
          method: 'POST',
          body: {
            name: "Seán O'Brien",
            email: 'sean@example.ie',
            notes: 'Tom & Jerry <3',
            tags: ['a', 'b'],
            age: 41,
          },
        }),
      ),
    ).toEqual([]);
  });

  it('reports where each finding is, in the documented notation', () => {
    const findings = detector.inspect(
      request({
        path: '/static/..%2f..%2f..%2fetc/passwd',
        query: { q: "' OR 1=1 --", ids: ['1', '<script>alert(1)</script>'] },
        headers: { ...HEADERS, 'user-agent': 'sqlmap/1.7', 'x-search': '; cat /etc/shadow' },
        cookies: { session: 'http://169.254.169.254/latest/' },
        body: {
          filter: { name: { $ne: null } },
          items: ['ok', 'ok', '{{constructor.constructor("alert(1)")()}}'],
        },
      }),
    );
    expect(where(findings)).toEqual(
      expect.arrayContaining([
        'path_traversal@path',
        'sqli@query.q',
        'xss@query.ids[1]',
        'scanner@header.user-agent',
        'cmdi@header.x-search',
        'ssrf@cookie.session',
        'nosqli@body.filter.name.$ne',
        'xss@body.items[2]',
      ]),
    );
  });

  it('inspects keys: NoSQL operators and prototype pollution, in JSON and in query keys', () => {
    expect(where(detector.inspect(request({ query: { 'user[$ne]': 'x' } })))).toContain(
      'nosqli@query.user[$ne]',
    );
    expect(where(detector.inspect(request({ query: { 'a[__proto__][x]': '1' } })))).toContain(
      'prototype_pollution@query.a[__proto__][x]',
    );
    const body = JSON.parse(
      '{"__proto__": {"isAdmin": true}, "a": {"constructor": {"prototype": {"x": 1}}}}',
    );
    expect(where(detector.inspect(request({ body })))).toEqual(
      expect.arrayContaining([
        'prototype_pollution@body.__proto__',
        'prototype_pollution@body.a.constructor.prototype',
      ]),
    );
  });

  it('inspects user-data headers only, never credentials or the headers Bastion reads itself', () => {
    const payload = "' OR 1=1 --";
    const findings = detector.inspect(
      request({
        headers: {
          ...HEADERS,
          authorization: payload,
          'x-api-key': payload,
          'x-request-id': payload,
          'x-forwarded-for': payload,
          'content-type': payload,
          'x-custom-note': payload,
          referer: payload,
        },
      }),
    );
    expect(where(findings).sort()).toEqual(['sqli@header.referer', 'sqli@header.x-custom-note']);
  });

  it('splits the cookie header when no parsed cookies are given', () => {
    const findings = detector.inspect(
      request({ headers: { ...HEADERS, cookie: 'a=1; prefs=<svg/onload=alert(1)>' } }),
    );
    expect(where(findings)).toEqual(['xss@cookie.prefs']);
  });

  it('reads UTF-8 sent in a header (which Node hands over as Latin-1)', () => {
    const latin1 = Buffer.from('＜script＞alert(1)＜/script＞', 'utf8').toString('latin1');
    expect(where(detector.inspect(request({ headers: { ...HEADERS, 'x-note': latin1 } })))).toContain(
      'xss@header.x-note',
    );
  });

  it('walks string bodies, form bodies and nested arrays', () => {
    expect(where(detector.inspect(request({ body: '../../../etc/passwd' })))).toContain(
      'path_traversal@body',
    );
    expect(where(detector.inspect(request({ body: { comment: ['x', ['y', '`id`']] } })))).toContain(
      'cmdi@body.comment[1][1]',
    );
  });

  it('walks every level up to the depth cap (default 128), and stops below it', () => {
    const nested = (levels: number) => {
      let deep: unknown = '<script>alert(1)</script>';
      for (let i = 0; i < levels; i += 1) deep = [deep];
      return deep;
    };
    // 100 levels is as deep as a JSON body may be by default: a payload there is still found.
    expect(detector.inspect(request({ body: nested(100) }))).toHaveLength(1);
    expect(detector.inspect(request({ body: nested(200) }))).toEqual([]);
    expect(createDetector({ maxDepth: 10 }).inspect(request({ body: nested(20) }))).toEqual([]);
    expect(() => createDetector({ maxDepth: 0 })).toThrow(TypeError);
  });

  it('orders the findings of one value strongest first', () => {
    const findings = detector.inspect(
      request({ query: { q: "1' UNION SELECT '<script>alert(1)</script>'--" } }),
    );
    const scores = findings.map((finding) => finding.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('stops after maxFindings', () => {
    const limited = createDetector({ maxFindings: 2 });
    const query = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`q${i}`, "' OR 1=1 --"]));
    expect(limited.inspect(request({ query }))).toHaveLength(2);
  });
});

describe('fragments', () => {
  const detector = createDetector();

  it('mask the middle of the blamed part and never show a whole value', () => {
    const value = "' OR 1=1 --";
    const [finding] = detector.inspectValue(value, 'query.q');
    expect(finding?.fragment).toContain('***');
    expect(finding?.fragment).not.toContain(value);
    expect(finding?.fragment.startsWith("'")).toBe(true);
  });

  it('are short even for long values, and escape control characters', () => {
    const [long] = detector.inspectValue(`<script>${'a'.repeat(5000)}</script>`, 'body.x');
    expect(long?.fragment.length).toBeLessThanOrEqual(60);
    const [crlf] = detector.inspectValue('%0d%0aSet-Cookie:%20a=b', 'query.next');
    expect(crlf?.fragment).not.toMatch(/[\r\n]/);
    expect(crlf?.fragment).toContain('\\r\\n');
  });
});

describe('options', () => {
  it('turn classes off', () => {
    const detector = createDetector({ classes: { sqli: false } });
    expect(detector.inspectValue("' OR 1=1 --", 'query.q')).toEqual([]);
    expect(detector.inspectValue('<script>alert(1)</script>', 'query.q')).not.toEqual([]);
  });

  it('exclude locations: a field, every item of an array, everything below a field, a header', () => {
    const detector = createDetector({
      exclude: ['body.content', 'body.snippets[]', 'body.html.*', 'header.X-Template', 'query.raw'],
    });
    const html = '<script>alert(1)</script>';
    const findings = detector.inspect(
      request({
        query: { raw: html, q: html },
        headers: { ...HEADERS, 'x-template': html },
        body: { content: html, snippets: [html, html], html: { a: html, b: [html] }, other: html },
      }),
    );
    expect(where(findings).sort()).toEqual(['xss@body.other', 'xss@query.q']);
  });

  it('exclude one array item by index', () => {
    const detector = createDetector({ exclude: ['body.items[0]'] });
    const findings = detector.inspect(
      request({ body: { items: ['<svg onload=alert(1)>', '<svg onload=alert(1)>'] } }),
    );
    expect(where(findings)).toEqual(['xss@body.items[1]']);
  });

  it('are checked at creation', () => {
    expect(() => createDetector({ maxFindings: 0 })).toThrow(TypeError);
    expect(() => createDetector({ classes: { sql: true } as never })).toThrow(/Unknown attack class/);
    expect(() => createDetector({ exclude: ['body..x'] })).toThrow(/exclude pattern/);
  });
});

describe('the memory of clean values (benignCache)', () => {
  const VALUES: [string, string][] = [
    ['sqlmap/1.7.2#stable (https://sqlmap.org)', 'query.q'],
    ['sqlmap/1.7.2#stable (https://sqlmap.org)', 'header.user-agent'],
    ["1' OR '1'='1", 'query.id'],
    ['Mozilla/5.0 (X11; Linux x86_64)', 'header.user-agent'],
    ['../../etc/passwd', 'path'],
    ['/api/v1/items', 'path'],
    ['<b>bold</b>', 'body.comment'],
    ['<script>alert(1)</script>', 'body.comment'],
    ['$where', 'body.filter'],
    ['plain words', 'cookie.theme'],
  ];

  it('gives the verdict scoring gives, place by place, in any order and when it starts over', () => {
    const scored = createDetector({ benignCache: 0 });
    const expected = VALUES.map(([value, location]) => scored.inspectValue(value, location));
    // A clean verdict in one place must not carry over to another (a tool's name is fine in a
    // query, not as the User-Agent); capacity 3 makes the memory start over along the way.
    for (const capacity of [1024, 3]) {
      const remembering = createDetector({ benignCache: capacity });
      for (let round = 0; round < 3; round += 1) {
        const order = round === 1 ? [...VALUES.keys()].reverse() : [...VALUES.keys()];
        for (const i of order) {
          const [value, location] = VALUES[i] as [string, string];
          expect(remembering.inspectValue(value, location)).toEqual(expected[i]);
        }
      }
    }
    expect(expected[1]?.length).toBeGreaterThan(0);
    expect(expected[0]).toEqual([]);
  });

  it('refuses a negative or fractional capacity', () => {
    expect(() => createDetector({ benignCache: -1 })).toThrow(/benignCache/);
    expect(() => createDetector({ benignCache: 1.5 })).toThrow(/benignCache/);
  });
});
