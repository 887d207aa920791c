/** Kinds of shell token. */
export const WORD = 1;
/** `;`, `&`, `&&`, `|`, `||`, newline, `(`, `{`: the next word is a command. */
export const SEPARATOR = 2;
/** `$(` or a backtick: a command substitution; the next word is a command. */
export const SUBSTITUTION = 3;
/** `>`, `>>`, `<`, `2>&1`, `&>`. */
export const REDIRECT = 4;
/** `)`, `}`: the end of a group or substitution. */
export const CLOSE = 5;

/** Tokens kept per value; injections show themselves early. */
export const MAX_SHELL_TOKENS = 256;

/** A reusable token buffer (kinds and spans). */
export class ShellTokens {
  readonly kinds = new Uint8Array(MAX_SHELL_TOKENS);
  readonly starts = new Int32Array(MAX_SHELL_TOKENS);
  readonly ends = new Int32Array(MAX_SHELL_TOKENS);
  count = 0;

  kind(index: number): number {
    return index < this.count ? this.kinds[index]! : 0;
  }

  push(kind: number, start: number, end: number): boolean {
    if (this.count === MAX_SHELL_TOKENS) return false;
    this.kinds[this.count] = kind;
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.count += 1;
    return true;
  }
}

/** `$IFS`, `${IFS}`, `$IFS$9`: the field separator, a space to the shell. Returns its length or 0. */
function ifsLength(text: string, at: number): number {
  if (text.startsWith('{IFS}', at + 1)) return 6;
  if (text.startsWith('$IFS', at))
    return text.charCodeAt(at + 4) === 36 && /\d/.test(text[at + 5] ?? '') ? 6 : 4;
  return 0;
}

// Start of the word being read by `tokenizeShell`, or -1 (module state: tokenizing is synchronous).
let wordStart = -1;

function endWord(out: ShellTokens, end: number): boolean {
  if (wordStart < 0) return true;
  const ok = out.push(WORD, wordStart, end);
  wordStart = -1;
  return ok;
}

/** Kind and length of the operator at `i`, packed as `kind * 8 + length`; 0 for a word character. */
function operatorAt(text: string, i: number): number {
  const code = text.charCodeAt(i);
  const next = text.charCodeAt(i + 1);
  switch (code) {
    case 10:
    case 13:
    case 59 /* ; */:
    case 40 /* ( */:
    case 123 /* { */:
      return SEPARATOR * 8 + 1;
    case 38 /* & */:
      if (next === 62) return REDIRECT * 8 + 2;
      return SEPARATOR * 8 + (next === 38 ? 2 : 1);
    case 124 /* | */:
      return SEPARATOR * 8 + (next === 124 ? 2 : 1);
    case 96 /* ` */:
      return SUBSTITUTION * 8 + 1;
    case 36 /* $ */:
      return next === 40 ? SUBSTITUTION * 8 + 2 : 0;
    case 41 /* ) */:
    case 125 /* } */:
      return CLOSE * 8 + 1;
    case 62 /* > */:
    case 60 /* < */:
      {
        let length = 1;
        while (length < 4 && (text.charCodeAt(i + length) === 62 || text.charCodeAt(i + length) === 38))
          length += 1;
        return REDIRECT * 8 + length;
      }
    default:
      return 0;
  }
}

// Character classes for the tokenizer's inner loop.
const WORD_CHAR = 0;
const BLANK = 1;
const OPERATOR = 2;
const ESCAPE = 3;
const DOLLAR_SIGN = 4;
const CLASSES = buildClasses();

function buildClasses(): Uint8Array {
  const classes = new Uint8Array(128);
  for (const char of ' \t\v\f') classes[char.charCodeAt(0)] = BLANK;
  for (const char of '\n\r;&|`(){}<>') classes[char.charCodeAt(0)] = OPERATOR;
  classes[92] = ESCAPE;
  classes[36] = DOLLAR_SIGN;
  return classes;
}

function classOf(code: number): number {
  return code < 128 ? CLASSES[code]! : WORD_CHAR;
}

/**
 * Splits a value into shell tokens. Quotes do not group (the value may sit inside quotes that
 * it closes), `$IFS` is a space, and operators are recognised wherever they are, as a POSIX
 * shell or cmd.exe would.
 */
export function tokenizeShell(text: string, out: ShellTokens): void {
  out.count = 0;
  wordStart = -1;
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    const kind = classOf(code);
    if (kind === WORD_CHAR) {
      if (wordStart < 0) wordStart = i;
      i += 1;
      while (i < text.length && classOf(text.charCodeAt(i)) === WORD_CHAR) i += 1;
      continue;
    }
    if (kind === BLANK) {
      if (!endWord(out, i)) return;
      i += 1;
      continue;
    }
    if (kind === ESCAPE) {
      if (text.charCodeAt(i + 1) === 96) {
        // An escaped backtick is a substitution one quoting level down (`"curl …?u=\`whoami\`"`).
        if (!endWord(out, i) || !out.push(SUBSTITUTION, i, i + 2)) return;
      } else if (wordStart < 0) {
        wordStart = i; // an escaped character belongs to the word (`c\at`); an escaped newline disappears
      }
      i += 2;
      continue;
    }
    if (kind === DOLLAR_SIGN) {
      const next = text.charCodeAt(i + 1);
      const ifs = next === 73 || next === 123 /* I { */ ? ifsLength(text, i) : 0;
      if (ifs > 0) {
        if (!endWord(out, i)) return;
        i += ifs;
        continue;
      }
      if (next !== 40 /* $( */) {
        if (wordStart < 0) wordStart = i;
        i += 1;
        continue;
      }
    }
    const operator = operatorAt(text, i);
    const length = operator & 7;
    if (!endWord(out, i) || !out.push(operator >> 3, i, i + length)) return;
    i += length;
  }
  endWord(out, text.length);
}

/** True when the word holds quotes, escapes, carets or `$`, which the shell removes or expands. */
function hasShellQuoting(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 39 || code === 34 || code === 94 || code === 92 || code === 36) return true;
  }
  return false;
}

/**
 * The word as the shell sees it, lower-cased: quotes, escapes (`c\at`), cmd.exe carets
 * (`w^hoami`) and empty expansions (`$@`, `$*`) removed.
 */
export function shellWord(text: string, start: number, end: number): string {
  if (!hasShellQuoting(text, start, end)) return text.slice(start, end).toLowerCase();
  let word = '';
  let i = start;
  while (i < end) {
    const code = text.charCodeAt(i);
    if (code === 39 || code === 34 || code === 94 /* ' " ^ */) {
      i += 1;
    } else if (code === 92) {
      if (i + 1 < end && text.charCodeAt(i + 1) !== 10) word += text[i + 1];
      i += 2;
    } else if (code === 36 && (text[i + 1] === '@' || text[i + 1] === '*')) {
      i += 2;
    } else {
      word += text[i];
      i += 1;
    }
  }
  return word.toLowerCase();
}
