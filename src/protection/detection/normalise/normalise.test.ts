import { describe, expect, it } from 'vitest';
import { charFlags } from '../char-flags.ts';
import {
  ENTITY_LAYER,
  ESCAPE_LAYER,
  NESTED_LAYERS,
  type Normalised,
  normalise,
  PERCENT_LAYER,
  UNICODE_LAYER,
  UTF7_LAYER,
} from './normalise.ts';
import { percentDecode } from './percent-decode.ts';

function decoded(raw: string): Normalised {
  const result: Normalised = { text: '', flags: 0, layers: 0 };
  normalise(raw, charFlags(raw), result);
  return result;
}

describe('normalise', () => {
  it.each([
    ['%3Cscript%3E', '<script>'],
    ['%253Cscript%253E', '<script>'],
    ['%25253Csvg', '<svg'],
    ['%u003cimg', '<img'],
    ['..%c0%af..%c0%afetc', '../../etc'],
    ['..%e0%80%afetc', '../etc'],
    ['%c0%ae%c0%ae/', '../'],
    ['&lt;b&gt;', '<b>'],
    ['&#60;&#x3C;&#0000060;&#x0003c', '<<<<'],
    ['jav&#x09;ascript&colon;', 'jav\tascript:'],
    ['&LT;i&Gt;', '<i>'],
    ['\\u003cscript\\u003e', '<script>'],
    ['\\x3cimg\\x3e', '<img>'],
    ['\\u{61}lert', 'alert'],
    ['%5Cu003c', '<'],
    ['＜script＞', '<script>'],
    ['ｕｎｉｏｎ ｓｅｌｅｃｔ', 'union select'],
    ['java\u200Bscript', 'javascript'],
    ['+ADw-script+AD4-', '<script>'],
    ['__proto_+AF8-', '__proto__'],
  ])('decodes %j to %j', (raw, text) => {
    expect(decoded(raw).text).toBe(text);
  });

  it.each([
    '100% organic',
    '50% off -- today only!',
    'AT&T and Procter & Gamble',
    'C:\\Users\\Anna\\Documents\\letter.docx',
    '+1-555-010-9999',
    'A+++ seller',
    'c++ vs rust',
    'O’Brien',
  ])('leaves %j as it is (nothing to decode)', (raw) => {
    expect(decoded(raw).text).toBe(raw);
  });

  it('records which layers were removed, and double encoding', () => {
    expect(decoded('%3Cb%3E').layers).toBe(PERCENT_LAYER);
    expect(decoded('%253Cb').layers & NESTED_LAYERS).toBe(NESTED_LAYERS);
    expect(decoded('&lt;b').layers & ENTITY_LAYER).toBe(ENTITY_LAYER);
    expect(decoded('\\u003c').layers & ESCAPE_LAYER).toBe(ESCAPE_LAYER);
    expect(decoded('＜b').layers & UNICODE_LAYER).toBe(UNICODE_LAYER);
    expect(decoded('+ADw-b').layers & UTF7_LAYER).toBe(UTF7_LAYER);
    expect(decoded('plain text').layers).toBe(0);
  });

  it('stops after three rounds', () => {
    expect(decoded('%2525253C').text).toBe('%3C');
  });
});

describe('percentDecode', () => {
  it('leaves invalid escapes alone', () => {
    expect(percentDecode('%zz%2x%')).toBe('%zz%2x%');
    expect(percentDecode('..%c1%8s')).toBe('..%8s');
  });

  it('reads + as a space only in form-encoded text', () => {
    expect(percentDecode('a+OR+1%3D1')).toBe('a OR 1=1');
    expect(percentDecode('1 + 1 %3D 2')).toBe('1 + 1 = 2');
  });

  it('drops broken lead bytes instead of failing', () => {
    expect(percentDecode('%c0.%c0./')).toBe('../');
  });
});
