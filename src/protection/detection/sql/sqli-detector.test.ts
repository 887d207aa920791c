import { describe, expect, it } from 'vitest';
import { createDetector } from '../create-detector.ts';

const detector = createDetector({ classes: { sqli: true } });
const sqliScore = (value: string): number =>
  detector.inspectValue(value, 'query.q').find((finding) => finding.class === 'sqli')?.score ?? 0;

describe('sqli detector', () => {
  it.each([
    ["' OR 1=1 --", 'quote breakout, tautology, comment'],
    ["admin'--", 'comment truncation after a quote'],
    ["admin' #", 'MySQL comment truncation'],
    ["') or ('a'='a", 'parenthesised breakout'],
    ['" or ""="', 'double-quote context'],
    ['1 OR 1=1', 'numeric context'],
    ['1) AND 7512=7512 AND (4321=4321', 'closing the original parentheses'],
    [' UNION ALL SELECT NULL,NULL,@@version-- -', 'union select'],
    ['-1 UnIoN/**/SeLeCt 1,2,3', 'mixed case, comment as a space'],
    ['1 UN/**/ION SEL/**/ECT 1', 'keyword cut by a comment'],
    ['1/*!50000UNION*//*!50000SELECT*/1,2', 'MySQL versioned comments'],
    ["1'; DROP TABLE users; --", 'stacked statement'],
    ["'; EXEC master..xp_cmdshell 'ping 10.0.0.1'--", 'stacked xp_cmdshell'],
    ["1' AND SLEEP(5) AND 'a'='a", 'time-based'],
    ["'; WAITFOR DELAY '0:0:5'--", 'T-SQL delay'],
    ['1 AND 1=(SELECT pg_sleep(4))', 'PostgreSQL delay in a subquery'],
    ["1' AND extractvalue(1,concat(0x7e,version()))-- -", 'error-based probe'],
    ["1' ORDER BY 10--+", 'column enumeration'],
    ["' HAVING 1=1--", 'having tautology'],
    ['last_insert_rowid()=last_insert_rowid()', 'function compared with itself'],
    ['5::integer=5', 'PostgreSQL cast compared with itself'],
    ['%27%20OR%201%3D1--', 'percent-encoded'],
    ['%2527%2520OR%25201%253D1--', 'double percent-encoded'],
    ["１' ＯＲ '１'='１", 'full-width'],
    ['foo%40example.com+OR+1%3D1+--+', 'form-encoded'],
    ["' oR 'z' LiKe 'z", 'LIKE tautology'],
    ['information_schema.tables', 'system schema'],
  ])('flags %j (%s)', (value) => {
    expect(sqliScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    "O'Brien",
    "Use 'OR' not 'AND' in the filter",
    'Can I use \' and " in my password?',
    'true && false === false',
    "Seán O'Brien",
    "D'Angelo Russell",
    "Rock 'n' Roll Hall of Fame",
    'Please select the size you want from the list below.',
    'Select all that apply',
    'select the best option; then update us',
    'Delete from my list the items I already bought, please.',
    "I'd like to drop the table reservation for tonight.",
    'The union meeting is on Friday at 5pm.',
    "Let's group by team and then order by score.",
    'Add 1 or 2 spoons of sugar, then stir.',
    '1 and 1 make 2, right?',
    'x < 10 and y > 5',
    '5 > 3 and 2 < 4',
    'He said: "or else we\'ll be late".',
    'Is "null and void" a legal term?',
    'Having a great time -- wish you were here!',
    'Wait for a delay of 5 minutes before you try again.',
    'sleep(5) minutes',
    'Chapter 3 covers SELECT statements and joins.',
    '{"select":["id","name"],"where":{"country":"NL"}}',
    'It\'s "okay" -- nothing special.',
    'union square, san francisco',
    "'90s music",
  ])('does not flag %j', (value) => {
    expect(sqliScore(value)).toBeLessThan(50);
  });
});
