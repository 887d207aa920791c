import { nextNonSpace, readToken, stringEnd } from './sql-tokenizer.ts';
import { T_DOT, T_STRING } from './sql-words.ts';

/** Tokens kept per context: injections show their shape in the first few dozen tokens. */
export const MAX_SQL_TOKENS = 128;

/** Where the value is assumed to sit in the query (libinjection's three contexts). */
export const AS_IS = 0;
export const IN_SINGLE_QUOTES = 39;
export const IN_DOUBLE_QUOTES = 34;

/**
 * The tokens of one value in one context, produced on demand: the parser asks for token `i`
 * and only that much of the value is read (plus two tokens of lookahead, so that folds like
 * `ORDER BY` are final). Prose fails to parse within a few tokens, so long text costs little.
 * Parallel typed arrays, reused for every value: only the words read are allocated.
 */
export class SqlTokens {
  readonly types = new Uint8Array(MAX_SQL_TOKENS);
  readonly starts = new Int32Array(MAX_SQL_TOKENS);
  readonly ends = new Int32Array(MAX_SQL_TOKENS);
  /** Lower-cased text of words, variables and operators; '' for the rest. */
  readonly words: string[] = new Array<string>(MAX_SQL_TOKENS).fill('');
  /** 1 when a string token found its closing quote. */
  readonly closed = new Uint8Array(MAX_SQL_TOKENS);
  count = 0;
  /** The value had more tokens than the buffer holds. */
  truncated = false;
  text = '';
  /** Where reading resumes; `text.length` once done. */
  position = 0;
  inVersionedComment = false;

  reset(text: string, context: number): void {
    this.text = text;
    this.count = 0;
    this.truncated = false;
    this.position = 0;
    this.inVersionedComment = false;
    if (context === AS_IS) return;
    const end = stringEnd(text, 0, context);
    this.push(T_STRING, 0, end < 0 ? text.length : end, '');
    this.closed[0] = end < 0 ? 0 : 1;
    this.position = end < 0 ? text.length : end;
  }

  push(type: number, start: number, end: number, word: string): void {
    const at = this.count;
    this.types[at] = type;
    this.starts[at] = start;
    this.ends[at] = end;
    this.words[at] = word;
    this.closed[at] = 1;
    this.count = at + 1;
  }

  /** Type of token `index` (reading as far as needed), or 0 past the end. */
  type(index: number): number {
    if (index + 2 >= this.count) this.readAhead(index);
    return index < this.count ? this.types[index]! : 0;
  }

  word(index: number): string {
    return this.type(index) === 0 ? '' : this.words[index]!;
  }

  /** Type of a token already read, without reading further (for folding while tokenizing). */
  readType(index: number): number {
    return index >= 0 && index < this.count ? this.types[index]! : 0;
  }

  private readAhead(index: number): void {
    while (this.position < this.text.length && (this.count <= index + 2 || this.onlyDotsAfter(index))) {
      if (this.count === MAX_SQL_TOKENS) {
        this.truncated = nextNonSpace(this.text, this.position) < this.text.length;
        this.position = this.text.length;
        return;
      }
      this.position = readToken(this, this.text, this.position);
    }
  }

  /** `master..` may still become `master..xp_cmdshell`: a token followed only by dots is not final. */
  private onlyDotsAfter(index: number): boolean {
    if (index + 1 >= this.count) return false;
    for (let i = index + 1; i < this.count; i += 1) if (this.types[i] !== T_DOT) return false;
    return true;
  }
}
