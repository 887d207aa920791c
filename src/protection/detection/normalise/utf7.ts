import { TextBuilder } from './text-builder.ts';

const BASE64_VALUE = buildBase64Table();
const MAX_RUN = 64;

function buildBase64Table(): Int8Array {
  const table = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i += 1) table[alphabet.charCodeAt(i)] = i;
  return table;
}

function base64Value(code: number): number {
  return code < 128 ? BASE64_VALUE[code]! : -1;
}

/**
 * Decodes UTF-7 runs (`+ADw-script+AD4-`, `__proto_+AF8-`), an old charset trick against filters
 * that look for ASCII. A run is decoded only when it yields printable ASCII, so `+1-555-0100`
 * and `A+++` stay as they are.
 */
export function decodeUtf7(text: string): string {
  let i = text.indexOf('+A');
  if (i < 0) return text;
  let out: TextBuilder | undefined;
  let copied = 0;
  while (i >= 0) {
    const end = runEnd(text, i + 1);
    const units = end > 0 ? decodeRun(text, i + 1, end) : undefined;
    if (units !== undefined) {
      out ??= new TextBuilder();
      out.pushSlice(text, copied, i);
      for (const unit of units) out.pushUnit(unit);
      copied = text.charCodeAt(end) === 45 /* - */ ? end + 1 : end;
      i = text.indexOf('+A', copied);
    } else {
      i = text.indexOf('+A', i + 1);
    }
  }
  if (out === undefined) return text;
  out.pushSlice(text, copied, text.length);
  return out.finish();
}

function runEnd(text: string, start: number): number {
  let i = start;
  while (i < text.length && i - start < MAX_RUN && base64Value(text.charCodeAt(i)) >= 0) i += 1;
  return i - start >= 3 ? i : 0;
}

function decodeRun(text: string, start: number, end: number): number[] | undefined {
  const units: number[] = [];
  let bits = 0;
  let bitCount = 0;
  for (let i = start; i < end; i += 1) {
    bits = ((bits << 6) | base64Value(text.charCodeAt(i))) & 0xffffff;
    bitCount += 6;
    if (bitCount >= 16) {
      bitCount -= 16;
      const unit = (bits >> bitCount) & 0xffff;
      if (unit < 0x20 || unit > 0x7e) return undefined;
      units.push(unit);
    }
  }
  return units.length > 0 ? units : undefined;
}
