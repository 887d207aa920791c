import { describe, expect, it } from 'vitest';
import { createDetector } from './create-detector.ts';

const detector = createDetector({ classes: { crlf: true } });
const crlfScore = (value: string): number =>
  detector.inspectValue(value, 'query.next').find((finding) => finding.class === 'crlf')?.score ?? 0;

describe('crlf detector', () => {
  it.each([
    ['%0d%0aSet-Cookie:%20session=attacker', 'encoded CRLF and a known header'],
    ['\r\nLocation: https://evil.example/', 'raw CRLF and a known header'],
    ['/home%0aX-Injected:%201', 'encoded LF and any header'],
    ['x%E5%98%8A%E5%98%8DSet-Cookie:%20a=b', 'Unicode characters cut down to CR and LF'],
    ['value\\r\\nX-Injected: 1', 'JSON escapes'],
    ['%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK', 'response splitting'],
    ['%0d%0a%0d%0a<script>alert(1)</script>', 'a body after a blank line'],
  ])('flags %j (%s)', (value) => {
    expect(crlfScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    'name: John\nage: 30\ncity: Boston',
    'Dear team,\r\nThanks!\r\nBob',
    'Line one\nLine two',
    '## Installation\n1. Download the zip',
    'a%0Ab',
  ])('does not flag %j', (value) => {
    expect(crlfScore(value)).toBeLessThan(50);
  });
});
