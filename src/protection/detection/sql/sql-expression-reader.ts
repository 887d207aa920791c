import {
  E_BINOP,
  E_COMPARE,
  E_FAIL,
  E_IDENTICAL,
  E_LITERAL,
  E_LITERAL_COMPARE,
  E_OK,
  E_SINGLE,
  E_WORD,
  E_WORDY_STRING,
  F_DELAY,
  F_PROBE,
  F_SUBSELECT,
  F_SYSTEM_TABLE,
  F_SYSTEM_VARIABLE,
  F_UNION_SELECT,
  K_LITERAL,
  K_NONE,
  K_WORD,
} from './sql-features.ts';
import type { SqlTokens } from './sql-tokens.ts';
import {
  CLAUSE_WORDS,
  COMPARISONS,
  DELAY_FUNCTIONS,
  EQUALITIES,
  PROBE_FUNCTIONS,
  SYSTEM_TABLES,
  T_CLOSE,
  T_COMMA,
  T_COMMENT,
  T_DELAY,
  T_FUNCTION,
  T_KEYWORD,
  T_LOGIC,
  T_NUMBER,
  T_OPEN,
  T_OPERATOR,
  T_STATEMENT,
  T_STRING,
  T_UNION,
  T_VARIABLE,
  T_WORD,
  UNARY_OPERATORS,
} from './sql-words.ts';

/** A string of words: false in a MySQL condition, unlike `'1'`, `'1=1'` (numeric prefix) or `''`. */
const WORDY_STRING = /^['"]?\s*[a-z]/i;

/**
 * The bottom layer of the SQL parser: a cursor over the tokens and the reading of expressions
 * (`1=1`, `'a' LIKE 'b'`, `f(x) IS NOT NULL`) and parenthesised groups, noting on the way what
 * only an attacker writes (delay and probe functions, `@@version`, system tables).
 */
export class SqlExpressionReader {
  protected tokens!: SqlTokens;
  protected text = '';
  p = 0;
  features = 0;

  protected startReading(tokens: SqlTokens, text: string, start: number): void {
    this.tokens = tokens;
    this.text = text;
    this.p = start;
    this.features = 0;
  }

  protected type(offset = 0): number {
    return this.tokens.type(this.p + offset);
  }

  protected word(offset = 0): string {
    return this.tokens.word(this.p + offset);
  }

  protected atEnd(): boolean {
    return this.tokens.type(this.p) === 0;
  }

  protected exprList(): number {
    let summary = this.expr();
    while (summary !== E_FAIL && this.type() === T_COMMA) {
      this.p += 1;
      const next = this.type();
      if (next === 0 || next === T_COMMENT) break; // `GROUP BY 1,2,--`
      summary = this.expr();
    }
    return summary;
  }

  /** Reads an expression: operands joined by operators (`1=1`, `'a' LIKE 'b'`, `x IS NOT NULL`). */
  protected expr(): number {
    let summary = E_OK;
    let operands = 0;
    let lastKind = K_NONE;
    let lastKey = '';
    let lastStart = 0;
    let comparing = false;
    let leftKind = K_NONE;
    let leftKey = '';
    let lastOperator = '';
    let comparison = '';
    for (;;) {
      while (this.type() === T_OPERATOR && UNARY_OPERATORS.has(this.word())) this.p += 1;
      const start = this.p;
      const kind = this.primary();
      if (kind === K_NONE) {
        if (operands === 0) return E_FAIL;
        break;
      }
      operands += 1;
      const key = this.operandKey(start);
      // PostgreSQL casts (`5::int`) belong to the operand: `5::int=5` compares 5 with itself.
      while (this.word() === '::' && (this.type(1) === T_WORD || this.type(1) === T_KEYWORD)) this.p += 2;
      if (comparing) {
        // `1=1`, `'a' LIKE 'a'`, `x=x`; an ordering of literals (`2 < 4`) is only a comparison.
        const literals = leftKind === K_LITERAL && kind === K_LITERAL && EQUALITIES.has(comparison);
        if (literals || (leftKey !== '' && leftKey === key)) summary |= E_LITERAL_COMPARE;
        if (leftKey !== '' && leftKey === key) summary |= E_IDENTICAL;
        comparing = false;
      }
      lastKind = kind;
      lastKey = key;
      lastStart = start;
      if (this.tokens.type(start) === T_STRING) while (this.type() === T_STRING) this.p += 1; // 'a' 'b' is one string in MySQL
      if (this.type() === T_OPERATOR) {
        summary |= E_BINOP;
        while (this.type() === T_OPERATOR) {
          lastOperator = this.word();
          if (COMPARISONS.has(lastOperator)) {
            summary |= E_COMPARE;
            comparing = true;
            comparison = lastOperator;
            leftKind = lastKind;
            leftKey = lastKey;
          }
          this.p += 1;
        }
        continue;
      }
      if (this.type() === T_LOGIC && lastOperator === 'between') {
        this.p += 1;
        lastOperator = '';
        continue;
      }
      break;
    }
    if (operands === 1) {
      summary |= E_SINGLE | (lastKind === K_WORD ? E_WORD : E_LITERAL);
      if (this.tokens.type(lastStart) === T_STRING && WORDY_STRING.test(lastKey)) summary |= E_WORDY_STRING;
    }
    return summary;
  }

  /** Text of the operand that starts at token `start` (for the `x = x` tautology). */
  protected operandKey(start: number): string {
    return this.text.slice(this.tokens.starts[start]!, this.tokens.ends[Math.max(start, this.p - 1)]!);
  }

  protected primary(): number {
    const type = this.type();
    const word = this.word();
    switch (type) {
      case T_NUMBER:
      case T_STRING:
        this.p += 1;
        return K_LITERAL;
      case T_VARIABLE:
        if (word.startsWith('@@')) this.features |= F_SYSTEM_VARIABLE;
        this.p += 1;
        return K_LITERAL;
      case T_WORD:
        this.noteName(word);
        this.p += 1;
        return K_WORD;
      case T_FUNCTION:
        this.noteFunction(word);
        this.p += 1;
        if (this.type() === T_OPEN) this.group();
        return K_LITERAL;
      case T_OPEN:
        this.group();
        return K_LITERAL;
      case T_KEYWORD:
        if (word === 'case') {
          this.skipTo('end');
          return K_LITERAL;
        }
        if (CLAUSE_WORDS.has(word)) return K_NONE;
        this.p += 1; // a non-reserved keyword used as a name: `time`, `data`, `user`
        return K_WORD;
      default:
        return K_NONE;
    }
  }

  protected noteName(word: string): void {
    if (SYSTEM_TABLES.has(word) || word.startsWith('information_schema.')) this.features |= F_SYSTEM_TABLE;
  }

  protected noteFunction(word: string): void {
    if (DELAY_FUNCTIONS.has(word)) this.features |= F_DELAY;
    else if (PROBE_FUNCTIONS.has(word) || word.startsWith('xp_') || word.includes('..xp_'))
      this.features |= F_PROBE;
  }

  /** Skips a parenthesised group, noting what it holds; an unclosed group may run to the end. */
  protected group(): void {
    let depth = 0;
    while (!this.atEnd()) {
      const type = this.type();
      const word = this.word();
      if (type === T_OPEN) depth += 1;
      else if (type === T_CLOSE) depth -= 1;
      else if (type === T_STATEMENT && word === 'select') this.features |= F_SUBSELECT;
      else if (type === T_UNION && this.type(1) === T_STATEMENT) this.features |= F_UNION_SELECT;
      else if (type === T_DELAY) this.features |= F_DELAY;
      else if (type === T_FUNCTION) this.noteFunction(word);
      else if (type === T_VARIABLE && word.startsWith('@@')) this.features |= F_SYSTEM_VARIABLE;
      else if (type === T_WORD) this.noteName(word);
      this.p += 1;
      if (depth === 0) return;
    }
  }

  protected groupHoldsString(from: number): boolean {
    for (let i = from; i < this.p; i += 1) if (this.tokens.types[i] === T_STRING) return true;
    return false;
  }

  protected skipTo(word: string): void {
    while (!this.atEnd() && !(this.type() === T_KEYWORD && this.word() === word)) this.p += 1;
    if (!this.atEnd()) this.p += 1;
  }

  protected skipWords(...words: string[]): void {
    while (words.includes(this.word())) this.p += 1;
  }
}
