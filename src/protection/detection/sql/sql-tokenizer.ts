import type { SqlTokens } from './sql-tokens.ts';
import {
  DELAY_FUNCTIONS,
  SQL_WORDS,
  T_CLOSE,
  T_COMMA,
  T_COMMENT,
  T_DELAY,
  T_DOT,
  T_FUNCTION,
  T_GROUPING,
  T_KEYWORD,
  T_LOGIC,
  T_NUMBER,
  T_OPEN,
  T_OPERATOR,
  T_SEMICOLON,
  T_STATEMENT,
  T_STRING,
  T_UNION,
  T_UNKNOWN,
  T_VARIABLE,
  T_WORD,
} from './sql-words.ts';

const THREE_CHAR_OPERATORS = new Set(['<=>', '->>', '!~*']);
/** JavaScript's strict comparisons: no SQL dialect has them, code in prose does. */
const FOREIGN_OPERATORS = new Set(['===', '!==']);
const TWO_CHAR_OPERATORS = new Set([
  '<=',
  '>=',
  '<>',
  '!=',
  '==',
  '::',
  ':=',
  '<<',
  '>>',
  '!<',
  '!>',
  '->',
  '!~',
  '~*',
]);
const SINGLE_OPERATORS = '=<>!+-*/%^|&~:';

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isWordStart(code: number): boolean {
  return (
    ((code | 0x20) >= 97 && (code | 0x20) <= 122) ||
    code === 95 /* _ */ ||
    code === 36 /* $ */ ||
    (code >= 0x80 && !isUnicodeSpaceOrPunct(code))
  );
}

function isWordChar(code: number): boolean {
  return isWordStart(code) || isDigit(code) || code === 64 /* @ inside e-mail addresses */;
}

function isUnicodeSpaceOrPunct(code: number): boolean {
  return (
    code === 0xa0 ||
    (code >= 0x2000 && code <= 0x206f) ||
    (code >= 0x3000 && code <= 0x303f) ||
    code === 0xfeff
  );
}

function isSpace(code: number): boolean {
  // Controls, NUL and backslashes separate tokens for the lenient parsers attackers target.
  return code <= 32 || code === 92 || code === 127;
}

/** Index after the closing `quote` of a string whose body starts at `start`, or -1 when unclosed. */
export function stringEnd(text: string, start: number, quote: number): number {
  let i = start;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 92) {
      i += 2;
    } else if (code === quote) {
      if (text.charCodeAt(i + 1) !== quote) return i + 1;
      i += 2;
    } else {
      i += 1;
    }
  }
  return -1;
}

const MAX_BRACKETED_NAME = 128;

/** End of a `[name]` identifier (a name without spaces), or 0. */
function bracketEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length && i - start <= MAX_BRACKETED_NAME; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 93) return i > start + 1 ? i + 1 : 0;
    if (!isWordChar(code)) return 0;
  }
  return 0;
}

function numberEnd(text: string, start: number): number {
  let i = start;
  const second = text.charCodeAt(start + 1) | 0x20;
  if (text.charCodeAt(start) === 48 && (second === 120 || second === 98) /* 0x 0b */) {
    i += 2;
    while (i < text.length && /[0-9a-f]/i.test(text[i]!)) i += 1;
    return i;
  }
  while (isDigit(text.charCodeAt(i))) i += 1;
  if (text.charCodeAt(i) === 46 /* . */) {
    i += 1;
    while (isDigit(text.charCodeAt(i))) i += 1;
  }
  const exponent = text.charCodeAt(i) | 0x20;
  if (exponent === 101 /* e */) {
    let j = i + 1;
    const sign = text.charCodeAt(j);
    if (sign === 43 || sign === 45) j += 1;
    if (isDigit(text.charCodeAt(j))) {
      i = j;
      while (isDigit(text.charCodeAt(i))) i += 1;
    }
  }
  return i;
}

export function nextNonSpace(text: string, start: number): number {
  let i = start;
  while (i < text.length && isSpace(text.charCodeAt(i))) i += 1;
  return i;
}

/**
 * Reads the next token of `text` from `i` into `out`; returns the index after it. Inline
 * comments separate tokens, except that a keyword cut in two (`UN/**\/ION`) is joined; MySQL's
 * `/*!50000 … *\/` keeps its content. An unterminated string or comment ends the value.
 */
export function readToken(out: SqlTokens, text: string, start: number): number {
  let i = start;
  while (i < text.length && isSpace(text.charCodeAt(i))) i += 1;
  if (i >= text.length) return i;
  const code = text.charCodeAt(i);
  const next = text.charCodeAt(i + 1);
  if (code === 39 || code === 34) {
    const end = stringEnd(text, i + 1, code);
    out.push(T_STRING, i, end < 0 ? text.length : end, '');
    if (end < 0) out.closed[out.count - 1] = 0;
    return end < 0 ? text.length : end;
  }
  if (code === 96 /* ` */) {
    const close = text.indexOf('`', i + 1);
    const end = close < 0 ? text.length : close + 1;
    out.push(T_WORD, i, end, text.slice(i + 1, close < 0 ? end : close).toLowerCase());
    return end;
  }
  if (code === 91 /* [ */ && bracketEnd(text, i) > 0) {
    const end = bracketEnd(text, i); // SQL Server's [quoted identifier]
    out.push(T_WORD, i, end, text.slice(i + 1, end - 1).toLowerCase());
    return end;
  }
  if (isDigit(code) || (code === 46 && isDigit(next))) {
    const end = numberEnd(text, i);
    out.push(T_NUMBER, i, end, '');
    return end;
  }
  if (isWordStart(code)) return readWord(text, i, out);
  if (code === 64 /* @ */) {
    let end = i + (next === 64 ? 2 : 1);
    while (end < text.length && (isWordChar(text.charCodeAt(end)) || text.charCodeAt(end) === 46)) end += 1;
    out.push(T_VARIABLE, i, end, text.slice(i, end).toLowerCase());
    return end;
  }
  if ((code === 45 && next === 45) || code === 35 /* -- # */) {
    out.push(T_COMMENT, i, text.length, '');
    const newline = text.indexOf('\n', i);
    return newline < 0 ? text.length : newline + 1;
  }
  if (code === 47 && next === 42 /* slash-star */) return readComment(out, text, i);
  if (code === 42 && next === 47 && out.inVersionedComment) {
    out.inVersionedComment = false;
    return i + 2;
  }
  const single = SINGLE_TOKENS.indexOf(text[i]!);
  if (single >= 0) {
    out.push(SINGLE_TYPES[single]!, i, i + 1, '');
    return i + 1;
  }
  return readOperator(text, i, out);
}

const SINGLE_TOKENS = '(),.;';
const SINGLE_TYPES = [T_OPEN, T_CLOSE, T_COMMA, T_DOT, T_SEMICOLON];

function readComment(out: SqlTokens, text: string, start: number): number {
  if (text.charCodeAt(start + 2) === 33 /* ! */) {
    let i = start + 3;
    while (isDigit(text.charCodeAt(i))) i += 1;
    out.inVersionedComment = true;
    return i;
  }
  const close = text.indexOf('*/', start + 2);
  if (close >= 0) return close + 2;
  out.push(T_COMMENT, start, text.length, '');
  return text.length;
}

function readOperator(text: string, start: number, out: SqlTokens): number {
  const three = text.slice(start, start + 3);
  if (FOREIGN_OPERATORS.has(three)) {
    out.push(T_UNKNOWN, start, start + 3, three);
    return start + 3;
  }
  if (THREE_CHAR_OPERATORS.has(three)) {
    out.push(T_OPERATOR, start, start + 3, three);
    return start + 3;
  }
  const two = three.slice(0, 2);
  if (two === '||' || two === '&&') {
    out.push(T_LOGIC, start, start + 2, two);
    return start + 2;
  }
  if (TWO_CHAR_OPERATORS.has(two)) {
    out.push(T_OPERATOR, start, start + 2, two);
    return start + 2;
  }
  const char = text[start]!;
  if (SINGLE_OPERATORS.includes(char)) {
    out.push(T_OPERATOR, start, start + 1, char);
  } else if (text.charCodeAt(start) < 0x80) {
    out.push(T_UNKNOWN, start, start + 1, char);
  }
  // Other non-ASCII symbols (dashes, primes) are typographic noise in copied payloads: skipped.
  return start + 1;
}

function wordEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && isWordChar(text.charCodeAt(i))) i += 1;
  return i;
}

/** Reads a name, keyword or function name starting at `start`; returns the index after it. */
function readWord(text: string, start: number, out: SqlTokens): number {
  let end = wordEnd(text, start);
  let word = text.slice(start, end).toLowerCase();
  // `SEL/**/ECT`: an empty comment splitting a keyword is removed, as naive filters expect.
  if (text.startsWith('/**/', end) && isWordStart(text.charCodeAt(end + 4)) && !SQL_WORDS.has(word)) {
    const joinedEnd = wordEnd(text, end + 4);
    const joined = word + text.slice(end + 4, joinedEnd).toLowerCase();
    if (SQL_WORDS.has(joined)) {
      word = joined;
      end = joinedEnd;
    }
  }
  let type = SQL_WORDS.get(word) ?? T_WORD;
  const callAt = text.charCodeAt(end) === 40 ? end : DELAY_FUNCTIONS.has(word) ? nextNonSpace(text, end) : -1;
  if (
    callAt >= 0 &&
    text.charCodeAt(callAt) === 40 &&
    (type === T_WORD || type === T_KEYWORD || type === T_NUMBER)
  ) {
    type = T_FUNCTION;
  }
  pushWord(out, type, start, end, word);
  return end;
}

/** Appends a word, folding `ORDER BY`, `UNION ALL`, `WAITFOR DELAY` and dotted names into one token. */
function pushWord(out: SqlTokens, type: number, start: number, end: number, word: string): void {
  const last = out.count - 1;
  const lastType = out.readType(last);
  const lastWord = last >= 0 ? out.words[last]! : '';
  if (word === 'by' && lastType === T_KEYWORD && (lastWord === 'order' || lastWord === 'group')) {
    out.types[last] = T_GROUPING;
    out.ends[last] = end;
    return;
  }
  if ((word === 'all' || word === 'distinct') && lastType === T_UNION) {
    out.ends[last] = end;
    return;
  }
  if ((word === 'delay' || word === 'time') && lastType === T_STATEMENT && lastWord === 'waitfor') {
    out.types[last] = T_DELAY;
    out.ends[last] = end;
    return;
  }
  if (lastType === T_DOT) {
    // `utl_inaddr.get_host_address`, `information_schema.tables`, `master..xp_cmdshell`
    let first = last;
    let dots = '.';
    while (out.readType(first - 1) === T_DOT) {
      first -= 1;
      dots += '.';
    }
    const ownerType = out.readType(first - 1);
    if (
      ownerType === T_WORD ||
      ownerType === T_KEYWORD ||
      ownerType === T_STATEMENT ||
      ownerType === T_NUMBER
    ) {
      const owner = first - 1;
      if (out.words[owner] !== '') {
        out.words[owner] = `${out.words[owner]}${dots}${word}`;
        out.types[owner] = type === T_FUNCTION ? T_FUNCTION : T_WORD;
        out.ends[owner] = end;
        out.count = owner + 1;
        return;
      }
    }
  }
  out.push(type, start, end, word);
}
