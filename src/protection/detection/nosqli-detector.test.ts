import { describe, expect, it } from 'vitest';
import { createDetector } from './create-detector.ts';

const detector = createDetector({ classes: { nosqli: true } });
const nosqliScore = (value: string): number =>
  detector.inspectValue(value, 'query.user').find((finding) => finding.class === 'nosqli')?.score ?? 0;

describe('nosqli detector', () => {
  it.each([
    ['{"$gt": ""}', 'JSON operator in a string'],
    ['{ $ne: 1 }', 'shell syntax'],
    ['[$ne]=1', 'bracket syntax'],
    ['username[$regex]=^adm&password[$ne]=x', 'query string in a value'],
    ["true, $where: '1 == 1'", '$where clause'],
    ["'; return this.secret == 'x'; var d='", 'JavaScript in $where'],
    ["' && this.password.match(/.*/)//", 'this.field probing'],
    ["';sleep(5000);'", 'delay'],
    ["' || '1'=='1", 'JavaScript tautology'],
    ['db.users.find()', 'shell call'],
  ])('flags %j (%s)', (value) => {
    expect(nosqliScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    '$5 flat fee',
    '$1,299.99',
    'PATH=/usr/local/bin:$PATH is set',
    'If you like it and it fits, keep it; otherwise return it.',
    'a || b',
    '{"price": "$20", "tags": ["a", "b"]}',
    'sleep(5) minutes',
  ])('does not flag %j', (value) => {
    expect(nosqliScore(value)).toBeLessThan(50);
  });
});
