/**
 * One pass over a value tells which interesting characters it holds, so that each detector can
 * skip values that cannot contain its attack (most values of a normal request are letters,
 * digits and a few separators).
 */
export const SQUOTE = 1 << 0;
export const DQUOTE = 1 << 1;
export const BACKTICK = 1 << 2;
export const LT = 1 << 3;
export const GT = 1 << 4;
export const AMP = 1 << 5;
export const PIPE = 1 << 6;
export const SEMI = 1 << 7;
export const DOLLAR = 1 << 8;
export const PAREN = 1 << 9;
export const BRACE = 1 << 10;
export const BRACKET = 1 << 11;
export const PERCENT = 1 << 12;
export const BACKSLASH = 1 << 13;
export const SLASH = 1 << 14;
export const DOT = 1 << 15;
export const COLON = 1 << 16;
export const EQUALS = 1 << 17;
export const HASH = 1 << 18;
export const DASH = 1 << 19;
export const STAR = 1 << 20;
export const AT = 1 << 21;
export const PLUS = 1 << 22;
export const COMMA = 1 << 23;
export const SPACE = 1 << 24;
export const NEWLINE = 1 << 25;
export const CONTROL = 1 << 26;
export const NON_ASCII = 1 << 27;
export const UNDERSCORE = 1 << 28;
export const OTHER_PUNCT = 1 << 29;

export const QUOTES = SQUOTE | DQUOTE | BACKTICK;

const TABLE = buildTable();

function buildTable(): Int32Array {
  const table = new Int32Array(128);
  const set = (chars: string, flag: number): void => {
    for (const char of chars) table[char.charCodeAt(0)]! |= flag;
  };
  for (let code = 0; code < 32; code += 1) table[code] = CONTROL;
  table[127] = CONTROL;
  set('\n\r', NEWLINE);
  set('\t', SPACE);
  set(' ', SPACE);
  set("'", SQUOTE);
  set('"', DQUOTE);
  set('`', BACKTICK);
  set('<', LT);
  set('>', GT);
  set('&', AMP);
  set('|', PIPE);
  set(';', SEMI);
  set('$', DOLLAR);
  set('()', PAREN);
  set('{}', BRACE);
  set('[]', BRACKET);
  set('%', PERCENT);
  set('\\', BACKSLASH);
  set('/', SLASH);
  set('.', DOT);
  set(':', COLON);
  set('=', EQUALS);
  set('#', HASH);
  set('-', DASH);
  set('*', STAR);
  set('@', AT);
  set('+', PLUS);
  set(',', COMMA);
  set('_', UNDERSCORE);
  set('!?^~', OTHER_PUNCT);
  return table;
}

/** The union of the flags of every character of `text`. */
export function charFlags(text: string): number {
  let flags = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    flags |= code < 128 ? TABLE[code]! : NON_ASCII;
  }
  return flags;
}
