import { hexValue } from './percent-decode.ts';
import { isEmittable, TextBuilder } from './text-builder.ts';

/**
 * Named character references that matter for markup, scripts, URLs and shells. Browsers know
 * about 2,000; the rest are letters and symbols that hide nothing.
 */
const NAMED: ReadonlyMap<string, number> = new Map([
  ['lt', 0x3c],
  ['gt', 0x3e],
  ['amp', 0x26],
  ['quot', 0x22],
  ['apos', 0x27],
  ['nbsp', 0xa0],
  ['tab', 0x09],
  ['newline', 0x0a],
  ['colon', 0x3a],
  ['semi', 0x3b],
  ['comma', 0x2c],
  ['period', 0x2e],
  ['excl', 0x21],
  ['quest', 0x3f],
  ['num', 0x23],
  ['dollar', 0x24],
  ['percnt', 0x25],
  ['plus', 0x2b],
  ['equals', 0x3d],
  ['commat', 0x40],
  ['sol', 0x2f],
  ['bsol', 0x5c],
  ['lpar', 0x28],
  ['rpar', 0x29],
  ['lsqb', 0x5b],
  ['rsqb', 0x5d],
  ['lbrack', 0x5b],
  ['rbrack', 0x5d],
  ['lcub', 0x7b],
  ['rcub', 0x7d],
  ['lbrace', 0x7b],
  ['rbrace', 0x7d],
  ['grave', 0x60],
  ['lowbar', 0x5f],
  ['hyphen', 0x2d],
  ['dash', 0x2010],
  ['ast', 0x2a],
  ['midast', 0x2a],
  ['vert', 0x7c],
  ['verbar', 0x7c],
  ['hat', 0x5e],
  ['tilde', 0x7e],
  ['backslash', 0x5c],
  ['lsquo', 0x2018],
  ['rsquo', 0x2019],
  ['ldquo', 0x201c],
  ['rdquo', 0x201d],
]);

/** Names browsers decode even without the closing `;`. */
const LEGACY = new Set(['lt', 'gt', 'amp', 'quot', 'nbsp']);

const MIN_NAME = 2;
const MAX_NAME = 10;
const MAX_DIGITS = 10;

function isAsciiLetter(code: number): boolean {
  return (code | 0x20) >= 97 && (code | 0x20) <= 122;
}

/**
 * Decodes HTML character references: named (a useful subset, any case), decimal and hex, with or
 * without the `;` (browsers accept `&#97` and `&lt`), any number of leading zeros.
 */
export function decodeHtmlEntities(text: string): string {
  let i = text.indexOf('&');
  if (i < 0) return text;
  let out: TextBuilder | undefined;
  let copied = 0;
  while (i >= 0 && i < text.length) {
    const end = referenceEnd(text, i);
    if (end > 0) {
      out ??= new TextBuilder();
      out.pushSlice(text, copied, i);
      const codePoint = decoded;
      if (isEmittable(codePoint) && codePoint !== 0) out.pushCodePoint(codePoint);
      copied = end;
      i = text.indexOf('&', end);
    } else {
      i = text.indexOf('&', i + 1);
    }
  }
  if (out === undefined) return text;
  out.pushSlice(text, copied, text.length);
  return out.finish();
}

// Set by `referenceEnd` (one value per call; kept outside to avoid a result object per entity).
let decoded = 0;

/** End index of the character reference at `start` (which holds `&`), or 0 when there is none. */
function referenceEnd(text: string, start: number): number {
  let i = start + 1;
  if (text.charCodeAt(i) === 35 /* # */) {
    i += 1;
    const hex = (text.charCodeAt(i) | 0x20) === 120; /* x */
    if (hex) i += 1;
    const digitsStart = i;
    let value = 0;
    while (i < text.length && i - digitsStart < MAX_DIGITS) {
      const code = text.charCodeAt(i);
      const digit = hex ? hexValue(code) : code >= 48 && code <= 57 ? code - 48 : -1;
      if (digit < 0) break;
      value = value * (hex ? 16 : 10) + digit;
      i += 1;
    }
    if (i === digitsStart) return 0;
    while (i < text.length && i - digitsStart < 32 && hexOrDigit(text.charCodeAt(i), hex)) i += 1;
    decoded = value;
    return text.charCodeAt(i) === 59 /* ; */ ? i + 1 : i;
  }
  while (i < text.length && i - start <= MAX_NAME && isAsciiLetter(text.charCodeAt(i))) i += 1;
  const length = i - start - 1;
  if (length < MIN_NAME) return 0; // `a&b`, `AT&T`: no name that short
  const name = text.slice(start + 1, i).toLowerCase();
  const codePoint = NAMED.get(name);
  if (codePoint === undefined) return 0;
  const terminated = text.charCodeAt(i) === 59;
  if (!terminated && !LEGACY.has(name)) return 0;
  decoded = codePoint;
  return terminated ? i + 1 : i;
}

function hexOrDigit(code: number, hex: boolean): boolean {
  return hex ? hexValue(code) >= 0 : code >= 48 && code <= 57;
}
