import { isEmittable, TextBuilder } from './text-builder.ts';

const HEX_VALUE = buildHexTable();

function buildHexTable(): Int8Array {
  const table = new Int8Array(128).fill(-1);
  for (let digit = 0; digit < 10; digit += 1) table[48 + digit] = digit;
  for (let letter = 0; letter < 6; letter += 1) {
    table[65 + letter] = 10 + letter;
    table[97 + letter] = 10 + letter;
  }
  return table;
}

/** Value of a hex digit, or -1. */
export function hexValue(code: number): number {
  return code < 128 ? HEX_VALUE[code]! : -1;
}

const VALID_ESCAPE = /%(?:[0-9a-f]{2}|u[0-9a-f]{4})/i;

function hexByteAt(text: string, index: number): number {
  const high = hexValue(text.charCodeAt(index));
  const low = hexValue(text.charCodeAt(index + 1));
  return high < 0 || low < 0 ? -1 : (high << 4) | low;
}

function hexUnitAt(text: string, index: number): number {
  let value = 0;
  for (let i = 0; i < 4; i += 1) {
    const digit = hexValue(text.charCodeAt(index + i));
    if (digit < 0) return -1;
    value = (value << 4) | digit;
  }
  return value;
}

/**
 * Decodes one layer of percent-encoding, the way a lenient server would: `%XX` bytes are read as
 * UTF-8 that may be overlong (`%c0%af` is `/`, an old IIS and Tomcat bypass), `%uXXXX` is a
 * UTF-16 unit (IIS), broken lead bytes are dropped and invalid escapes are left as they are.
 * `+` becomes a space when the value is evidently form-encoded (escapes and no raw space).
 */
export function percentDecode(text: string): string {
  const first = text.indexOf('%');
  if (first < 0) return text;
  if (!VALID_ESCAPE.test(text)) return text;
  // Well-formed UTF-8 escapes without `+` or `%u`: the native decoder gives the same result, faster.
  if (text.indexOf('+') < 0 && !/%u/i.test(text)) {
    try {
      return decodeURIComponent(text);
    } catch {
      // malformed or overlong: decoded leniently below
    }
  }
  const plusIsSpace = text.indexOf(' ') < 0 && text.indexOf('+') >= 0;
  const out = new TextBuilder();
  const bytes: number[] = [];
  let copied = 0;
  let changed = false;
  let i = plusIsSpace ? Math.min(first, text.indexOf('+')) : first;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 37 /* % */) {
      const byte = hexByteAt(text, i + 1);
      if (byte >= 0) {
        out.pushSlice(text, copied, i);
        bytes.push(byte);
        i += 3;
        copied = i;
        changed = true;
        continue;
      }
      const unit = (text.charCodeAt(i + 1) | 0x20) === 117 /* u */ ? hexUnitAt(text, i + 2) : -1;
      if (unit >= 0) {
        flushBytes(bytes, out);
        out.pushSlice(text, copied, i);
        out.pushUnit(unit);
        i += 6;
        copied = i;
        changed = true;
        continue;
      }
    }
    if (bytes.length > 0) flushBytes(bytes, out);
    if (code === 43 /* + */ && plusIsSpace) {
      out.pushSlice(text, copied, i);
      out.pushUnit(32);
      copied = i + 1;
    }
    i += 1;
  }
  if (!changed) return text;
  flushBytes(bytes, out);
  out.pushSlice(text, copied, text.length);
  return out.finish();
}

/** Sequence length announced by a UTF-8 lead byte, including the 5- and 6-byte forms of old decoders. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc0) return 0;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  if (lead < 0xf8) return 4;
  if (lead < 0xfc) return 5;
  if (lead < 0xfe) return 6;
  return 0;
}

/** Decodes buffered bytes as lenient UTF-8 (overlong forms accepted) into `out`, then empties them. */
function flushBytes(bytes: number[], out: TextBuilder): void {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const length = sequenceLength(lead);
    if (length === 1) {
      out.pushUnit(lead);
      i += 1;
      continue;
    }
    if (length === 0 || i + length > bytes.length) {
      i += 1; // stray continuation or truncated sequence: dropped, as the decoders being fooled do
      continue;
    }
    let codePoint = lead & (0x7f >> length);
    let valid = true;
    for (let k = 1; k < length; k += 1) {
      const next = bytes[i + k]!;
      if ((next & 0xc0) !== 0x80) {
        valid = false;
        break;
      }
      codePoint = codePoint * 64 + (next & 0x3f);
    }
    if (!valid) {
      i += 1;
      continue;
    }
    if (isEmittable(codePoint)) out.pushCodePoint(codePoint);
    i += length;
  }
  bytes.length = 0;
}
