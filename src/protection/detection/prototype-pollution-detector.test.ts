import { describe, expect, it } from 'vitest';
import { createDetector } from './create-detector.ts';

const detector = createDetector({ classes: { prototype_pollution: true } });
const pollutionScore = (value: string): number =>
  detector.inspectValue(value, 'body.settings').find((finding) => finding.class === 'prototype_pollution')
    ?.score ?? 0;

describe('prototype pollution detector', () => {
  it.each([
    '?__proto__[admin]=1',
    'a[__proto__][b]=1',
    '{"__proto__": {"isAdmin": true}}',
    'constructor[prototype][admin]=true',
    'x.constructor.prototype.polluted=1',
    '{"constructor":{"prototype":{"x":1}}}',
    '%5F%5Fproto%5F%5F[x]=1',
    '__proto_+AF8-[x]=1',
    'Object.prototype.isAdmin = true',
  ])('flags %j', (value) => {
    expect(pollutionScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    'Use Array.prototype.map() to transform the list.',
    '/test?g=Object.prototypetest',
    '/prototype/test.txt',
    'the prototype is ready',
  ])('does not flag %j', (value) => {
    expect(pollutionScore(value)).toBeLessThan(50);
  });
});
