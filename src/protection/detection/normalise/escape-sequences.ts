import { hexValue } from './percent-decode.ts';
import { isEmittable, TextBuilder } from './text-builder.ts';

const MAX_BRACED_DIGITS = 6;
const BACKSLASH = '\\';

function hexRun(text: string, start: number, length: number): number {
  let value = 0;
  for (let i = start; i < start + length; i += 1) {
    const digit = hexValue(text.charCodeAt(i));
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

// Length of the escape read by `unicodeEscape`.
let escapeLength = 0;

/** `\u003c` or `\u{3c}` at `i`: the code point (or -1), its length in `escapeLength`. */
function unicodeEscape(text: string, i: number): number {
  if (text.charCodeAt(i + 2) !== 123 /* { */) {
    escapeLength = 6;
    return hexRun(text, i + 2, 4);
  }
  const close = text.indexOf('}', i + 3);
  if (close <= i + 3 || close - i - 3 > MAX_BRACED_DIGITS) return -1;
  escapeLength = close - i + 1;
  return hexRun(text, i + 3, close - i - 3);
}

/**
 * Decodes the JSON and JavaScript escapes attackers use to hide markup and keywords:
 * `\u003c`, `\u{3c}`, `\x3c`, `\n`, `\r`, `\t`, `\/` and `\\` (not `\0`, which starts CSS escapes like `\0075`). Quote escapes stay, because
 * they mean something inside SQL and shell strings.
 */
export function decodeEscapes(text: string): string {
  let i = text.indexOf('\\');
  if (i < 0) return text;
  let out: TextBuilder | undefined;
  let copied = 0;
  while (i >= 0 && i < text.length - 1) {
    const next = text.charCodeAt(i + 1);
    if (next === 92) {
      // A run of backslashes halves in one step (`\\\\` → `\\`); an odd last one escapes what follows.
      let end = i;
      while (text.charCodeAt(end) === 92) end += 1;
      const pairs = (end - i) >> 1;
      out ??= new TextBuilder();
      out.pushSlice(text, copied, i);
      out.pushSlice(BACKSLASH.repeat(pairs), 0, pairs);
      copied = i + pairs * 2;
      i = copied === end ? text.indexOf('\\', copied) : copied;
      continue;
    }
    let codePoint = -1;
    let length = 2;
    switch (next) {
      case 117 /* u */:
        codePoint = unicodeEscape(text, i);
        length = escapeLength;
        break;
      case 120 /* x */:
        codePoint = hexRun(text, i + 2, 2);
        length = 4;
        break;
      case 110 /* n */:
        codePoint = 10;
        break;
      case 114 /* r */:
        codePoint = 13;
        break;
      case 116 /* t */:
        codePoint = 9;
        break;
      case 47 /* / */:
        codePoint = next;
        break;
    }
    if (codePoint >= 0 && isEmittable(codePoint)) {
      out ??= new TextBuilder();
      out.pushSlice(text, copied, i);
      out.pushCodePoint(codePoint);
      copied = i + length;
      i = text.indexOf('\\', copied);
    } else {
      i = text.indexOf('\\', i + 1);
    }
  }
  if (out === undefined) return text;
  out.pushSlice(text, copied, text.length);
  return out.finish();
}
