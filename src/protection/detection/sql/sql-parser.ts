import type { SqlTokens } from './sql-tokenizer.ts';
import {
  DELAY_FUNCTIONS,
  PROBE_FUNCTIONS,
  SYSTEM_TABLES,
  T_CLOSE,
  T_COMMA,
  T_COMMENT,
  T_DELAY,
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
  T_VARIABLE,
  T_WORD,
} from './sql-words.ts';

/** What the parser found (bits of `SqlParser.features`). */
export const F_UNION_SELECT = 1 << 0;
export const F_STACKED = 1 << 1;
export const F_DELAY = 1 << 2;
export const F_PROBE = 1 << 3;
export const F_SYSTEM_VARIABLE = 1 << 4;
export const F_SYSTEM_TABLE = 1 << 5;
export const F_TAUTOLOGY = 1 << 6;
export const F_LOGIC_COMPARE = 1 << 7;
export const F_LOGIC_LITERAL = 1 << 8;
export const F_LOGIC_WORD = 1 << 9;
export const F_GROUPING = 1 << 10;
export const F_FILTER = 1 << 11;
export const F_STATEMENT = 1 << 12;
export const F_WEAK_STATEMENT = 1 << 13;
export const F_COMMENT = 1 << 14;
export const F_OPERATOR = 1 << 15;
export const F_OPERATOR_COMPARE = 1 << 16;
export const F_SEMICOLON_END = 1 << 17;
export const F_CLOSERS = 1 << 18;
export const F_FILE = 1 << 19;
export const F_SUBSELECT = 1 << 20;
export const F_LIST = 1 << 21;

// Summary of one expression.
const E_FAIL = 0;
const E_OK = 1;
const E_COMPARE = 2;
const E_LITERAL_COMPARE = 4;
const E_SINGLE = 8;
const E_LITERAL = 16;
const E_WORD = 32;
const E_BINOP = 64;
/** A comparison of an operand with itself (`x=x`, `f()=f()`, `'a'='a'`). */
const E_IDENTICAL = 128;

// Kinds of operand.
const K_NONE = 0;
const K_LITERAL = 1;
const K_WORD = 2;

/** What `lead` found: nothing (the value starts with a clause), one operand, or an expression. */
export const LEAD_NONE = 0;
export const LEAD_SIMPLE = 1;
export const LEAD_COMPOUND = 2;

// Outcome of a statement.
const S_FAIL = 0;
const S_WEAK = 1;
const S_STRONG = 2;

const UNARY = new Set(['-', '+', '!', '~', 'not']);
const COMPARISONS = new Set([
  '=',
  '==',
  '<',
  '>',
  '<=',
  '>=',
  '<>',
  '!=',
  '<=>',
  '!<',
  '!>',
  'like',
  'rlike',
  'ilike',
  'regexp',
  'is',
  'in',
  'between',
  'sounds',
  'glob',
  'match',
]);
const OBJECT_KINDS = new Set([
  'table',
  'database',
  'schema',
  'procedure',
  'function',
  'view',
  'index',
  'trigger',
  'user',
  'login',
  'column',
  'tablespace',
  'event',
]);
const PRIVILEGES = new Set([
  'all',
  'select',
  'insert',
  'update',
  'delete',
  'execute',
  'exec',
  'connect',
  'resource',
  'dba',
  'usage',
  'create',
  'alter',
  'drop',
  'file',
  'process',
  'super',
  'references',
  'index',
]);
/** Keywords that start or shape a clause and so can never be an operand. */
const CLAUSE_WORDS = new Set([
  'from',
  'where',
  'into',
  'values',
  'set',
  'as',
  'by',
  'order',
  'group',
  'having',
  'limit',
  'offset',
  'top',
  'distinct',
  'all',
  'join',
  'inner',
  'outer',
  'cross',
  'natural',
  'on',
  'using',
  'when',
  'then',
  'else',
  'end',
  'asc',
  'desc',
  'with',
  'if',
  'exists',
  'to',
  'for',
  'begin',
  'while',
  'elseif',
  'returns',
  'go',
]);
const JOIN_WORDS = new Set(['join', 'inner', 'outer', 'left', 'right', 'cross', 'natural', 'full']);

/**
 * A forgiving recursive-descent reader of the SQL an injected value would form once pasted
 * into a query: an expression, then clauses (`OR …`, `UNION SELECT …`, `; DROP …`, `ORDER BY`,
 * a comment). It records what it sees as `features` and whether it ran into something SQL
 * cannot continue with (`stuck`), which is how prose that happens to contain SQL words fails.
 */
export class SqlParser {
  private tokens!: SqlTokens;
  private text = '';
  p = 0;
  features = 0;
  /** Clauses read after the lead (the legitimate part of the value). */
  clauseCount = 0;
  stuck = false;

  reset(tokens: SqlTokens, text: string, start: number): void {
    this.tokens = tokens;
    this.text = text;
    this.p = start;
    this.features = 0;
    this.clauseCount = 0;
    this.stuck = false;
  }

  private type(offset = 0): number {
    return this.tokens.type(this.p + offset);
  }

  private word(offset = 0): string {
    return this.tokens.word(this.p + offset);
  }

  private atEnd(): boolean {
    return this.p >= this.tokens.count;
  }

  /**
   * Reads the lead of an as-is value: the legitimate part before the injection (`1`, `admin`,
   * `x < 3`). A value that compares something with itself (`f()=f()`) is a tautology already.
   */
  lead(): number {
    const type = this.type();
    if (type !== T_NUMBER && type !== T_STRING && type !== T_WORD && type !== T_VARIABLE) {
      if (type !== T_FUNCTION && type !== T_OPEN && type !== T_OPERATOR) return LEAD_NONE;
    }
    const summary = this.expr();
    if (summary === E_FAIL) return LEAD_NONE;
    if (summary & E_IDENTICAL) this.features |= F_TAUTOLOGY;
    return summary & E_SINGLE ? LEAD_SIMPLE : LEAD_COMPOUND;
  }

  /** Reads clauses until the end, a comment, or a token SQL cannot continue with. */
  clauses(afterBreakout: boolean): void {
    while (!this.stuck) {
      const type = this.type();
      if (type === 0) return;
      if (type === T_COMMENT) {
        this.features |= F_COMMENT;
        return;
      }
      if (!this.clause(type, afterBreakout && this.clauseCount === 0)) {
        this.stuck = true;
        return;
      }
      if (type !== T_CLOSE) this.clauseCount += 1;
    }
  }

  private clause(type: number, first: boolean): boolean {
    switch (type) {
      case T_CLOSE:
        this.p += 1;
        this.features |= F_CLOSERS;
        return true;
      case T_LOGIC:
        return this.logic();
      case T_UNION:
        return this.union();
      case T_SEMICOLON:
        return this.stacked();
      case T_STATEMENT:
      case T_DELAY:
        // Without a `;` it is a statement only if the rest of the value agrees (see F_STATEMENT).
        return this.statementClause(F_STATEMENT);
      case T_GROUPING:
        this.p += 1;
        if (this.exprList() === E_FAIL) return false;
        this.features |= F_GROUPING;
        this.skipWords('asc', 'desc');
        return true;
      case T_KEYWORD:
        return this.keywordClause();
      case T_OPERATOR:
        return this.operatorClause(first);
      case T_COMMA:
        this.p += 1;
        if (this.exprList() === E_FAIL) return false;
        this.features |= F_LIST;
        return true;
      default:
        return false;
    }
  }

  private logic(): boolean {
    this.p += 1;
    const summary = this.expr();
    if (summary === E_FAIL) return this.atEnd();
    if (summary & E_LITERAL_COMPARE) this.features |= F_TAUTOLOGY | F_LOGIC_COMPARE;
    else if (summary & E_COMPARE) this.features |= F_LOGIC_COMPARE;
    else if (summary & E_WORD) this.features |= F_LOGIC_WORD;
    else this.features |= F_LOGIC_LITERAL;
    return true;
  }

  private union(): boolean {
    this.p += 1;
    while (this.type() === T_OPEN) this.p += 1;
    if (this.type() !== T_STATEMENT || this.word() !== 'select') return this.atEnd();
    const outcome = this.select();
    if (outcome === S_FAIL) return false;
    this.features |= F_UNION_SELECT;
    while (this.type() === T_CLOSE) this.p += 1;
    return true;
  }

  private stacked(): boolean {
    this.p += 1;
    const type = this.type();
    if (type === 0 || type === T_COMMENT) {
      this.features |= F_SEMICOLON_END;
      return true;
    }
    if (type !== T_STATEMENT && type !== T_DELAY) return false;
    return this.statementClause(F_STACKED);
  }

  private statementClause(strongFeature: number): boolean {
    const outcome = this.statement();
    if (outcome === S_FAIL) return false;
    this.features |= outcome === S_STRONG ? strongFeature : F_WEAK_STATEMENT;
    return true;
  }

  private keywordClause(): boolean {
    const word = this.word();
    this.p += 1;
    if (word === 'where' || word === 'having') {
      const summary = this.expr();
      if (summary === E_FAIL || !(summary & E_COMPARE)) return false;
      this.features |= summary & E_LITERAL_COMPARE ? F_FILTER | F_TAUTOLOGY : F_FILTER;
      return true;
    }
    if (word === 'limit' || word === 'offset') {
      if (this.type() !== T_NUMBER) return false;
      this.p += 1;
      if (this.type() === T_COMMA && this.type(1) === T_NUMBER) this.p += 2;
      this.features |= F_GROUPING;
      return true;
    }
    if (word === 'into') return this.intoFile();
    if (word === 'else' && this.type() === T_STATEMENT) return true; // T-SQL `IF (…) SELECT … ELSE DROP …`
    if (word === 'as' && (this.type() === T_WORD || this.type() === T_STRING)) {
      this.p += 1; // a column alias: the value was placed in a select list
      return true;
    }
    if (word === 'procedure' && this.word() === 'analyse') {
      this.features |= F_PROBE;
      this.p += 1;
      return true;
    }
    return false;
  }

  private intoFile(): boolean {
    const target = this.word();
    if (target !== 'outfile' && target !== 'dumpfile') return false;
    this.p += 1;
    if (this.type() === T_STRING) this.p += 1;
    this.features |= F_FILE;
    return true;
  }

  private operatorClause(first: boolean): boolean {
    let compare = false;
    while (this.type() === T_OPERATOR) {
      compare ||= COMPARISONS.has(this.word());
      this.p += 1;
    }
    const summary = this.expr();
    if (summary === E_FAIL && !this.atEnd()) return false;
    if (first) this.features |= compare ? F_OPERATOR | F_OPERATOR_COMPARE : F_OPERATOR;
    return true;
  }

  private exprList(): number {
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
  private expr(): number {
    let summary = E_OK;
    let operands = 0;
    let lastKind = K_NONE;
    let lastKey = '';
    let comparing = false;
    let leftKind = K_NONE;
    let leftKey = '';
    let lastOperator = '';
    for (;;) {
      while (this.type() === T_OPERATOR && UNARY.has(this.word())) this.p += 1;
      const start = this.p;
      const kind = this.primary();
      if (kind === K_NONE) {
        if (operands === 0) return E_FAIL;
        break;
      }
      operands += 1;
      const key = this.operandKey(start);
      if (comparing) {
        if ((leftKind === K_LITERAL && kind === K_LITERAL) || (leftKey !== '' && leftKey === key)) {
          summary |= E_LITERAL_COMPARE;
        }
        if (leftKey !== '' && leftKey === key) summary |= E_IDENTICAL;
        comparing = false;
      }
      lastKind = kind;
      lastKey = key;
      if (this.tokens.type(start) === T_STRING) while (this.type() === T_STRING) this.p += 1; // 'a' 'b' is one string in MySQL
      if (this.type() === T_OPERATOR) {
        summary |= E_BINOP;
        while (this.type() === T_OPERATOR) {
          lastOperator = this.word();
          if (COMPARISONS.has(lastOperator)) {
            summary |= E_COMPARE;
            comparing = true;
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
    if (operands === 1) summary |= E_SINGLE | (lastKind === K_WORD ? E_WORD : E_LITERAL);
    return summary;
  }

  /** Text of the operand that starts at token `start` (for the `x = x` tautology). */
  private operandKey(start: number): string {
    return this.text.slice(this.tokens.starts[start]!, this.tokens.ends[Math.max(start, this.p - 1)]!);
  }

  private primary(): number {
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

  private noteName(word: string): void {
    if (SYSTEM_TABLES.has(word) || word.startsWith('information_schema.')) this.features |= F_SYSTEM_TABLE;
  }

  private noteFunction(word: string): void {
    if (DELAY_FUNCTIONS.has(word)) this.features |= F_DELAY;
    else if (PROBE_FUNCTIONS.has(word) || word.startsWith('xp_') || word.includes('..xp_'))
      this.features |= F_PROBE;
  }

  /** Skips a parenthesised group, noting what it holds; an unclosed group may run to the end. */
  private group(): void {
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

  private skipTo(word: string): void {
    while (!this.atEnd() && !(this.type() === T_KEYWORD && this.word() === word)) this.p += 1;
    if (!this.atEnd()) this.p += 1;
  }

  private skipWords(...words: string[]): void {
    while (words.includes(this.word())) this.p += 1;
  }

  private statement(): number {
    const word = this.word();
    const type = this.type();
    if (type === T_DELAY) {
      this.p += 1;
      if (this.type() !== T_STRING && this.type() !== T_NUMBER) return S_FAIL;
      this.p += 1;
      this.features |= F_DELAY;
      return S_STRONG;
    }
    switch (word) {
      case 'select':
        return this.select();
      case 'insert':
        return this.insert();
      case 'update':
        return this.update();
      case 'delete':
        return this.delete();
      case 'drop':
      case 'create':
      case 'alter':
      case 'truncate':
        return this.definition(word);
      case 'exec':
      case 'execute':
        return this.execute();
      case 'declare':
        this.p += 1;
        return this.type() === T_VARIABLE ? this.consume(S_STRONG) : S_FAIL;
      case 'shutdown':
        this.p += 1;
        return this.type() === 0 ||
          this.type() === T_SEMICOLON ||
          this.type() === T_COMMENT ||
          this.word() === 'with'
          ? this.consume(S_STRONG, this.word() === 'with' ? 2 : 0)
          : S_FAIL;
      case 'grant':
      case 'revoke':
        this.p += 1;
        return PRIVILEGES.has(this.word()) ? this.skipStatement() : S_FAIL;
      case 'load':
      case 'backup':
      case 'restore':
        this.p += 1;
        return ['data', 'xml', 'database', 'log'].includes(this.word()) ? this.skipStatement() : S_FAIL;
      case 'copy':
        this.p += 1;
        if (this.type() !== T_WORD || (this.word(1) !== 'from' && this.word(1) !== 'to')) return S_FAIL;
        this.p += 2;
        return this.type() === T_STRING || ['stdin', 'stdout', 'program'].includes(this.word())
          ? this.skipStatement()
          : S_FAIL;
      case 'bulk':
        this.p += 1;
        return this.word() === 'insert' ? this.skipStatement() : S_FAIL;
      default:
        return S_FAIL;
    }
  }

  private consume(outcome: number, tokens = 0): number {
    this.p += tokens;
    return outcome;
  }

  /** For statements whose tail does not matter once their head is unmistakable. */
  private skipStatement(): number {
    while (!this.atEnd() && this.type() !== T_SEMICOLON && this.type() !== T_COMMENT) this.p += 1;
    return S_STRONG;
  }

  private select(): number {
    this.p += 1;
    this.skipWords('distinct', 'all');
    if (this.word() === 'top' && this.type(1) === T_NUMBER) this.p += 2;
    let sqlish = false;
    for (;;) {
      if (this.type() === T_OPERATOR && this.word() === '*') {
        this.p += 1;
        sqlish = true;
      } else {
        let summary = this.expr();
        while (summary !== E_FAIL && this.type() === T_LOGIC && this.word() === '||') {
          this.p += 1; // string concatenation in Oracle and PostgreSQL
          summary = this.expr() | E_BINOP;
        }
        if (summary === E_FAIL) return this.atEnd() ? S_WEAK : S_FAIL;
        if (!(summary & E_WORD) || summary & E_BINOP) sqlish = true;
        if (!this.alias()) return S_FAIL;
      }
      if (this.type() !== T_COMMA) break;
      this.p += 1;
    }
    if (this.word() === 'into') {
      this.p += 1;
      if (!this.intoFile()) return S_FAIL;
      sqlish = true;
    }
    if (this.word() === 'from') {
      this.p += 1;
      if (!this.tableList()) return S_FAIL;
      sqlish = true;
    }
    if (!this.selectTail()) return S_FAIL;
    return sqlish ? S_STRONG : S_WEAK;
  }

  private selectTail(): boolean {
    if (this.word() === 'where' && this.type() === T_KEYWORD) {
      this.p += 1;
      if (this.expr() === E_FAIL) return false;
    }
    while (this.type() === T_GROUPING || this.word() === 'having' || this.word() === 'limit') {
      this.p += 1;
      if (this.exprList() === E_FAIL) return false;
      this.skipWords('asc', 'desc');
    }
    return true;
  }

  /** `AS name`, or a bare alias after an expression. */
  private alias(): boolean {
    if (this.word() === 'as' && this.type() === T_KEYWORD) {
      this.p += 1;
      if (this.type() !== T_WORD && this.type() !== T_STRING) return false;
      this.p += 1;
    } else if (this.type() === T_WORD || (this.type() === T_STRING && this.tokens.closed[this.p])) {
      this.p += 1;
    }
    return true;
  }

  private tableList(): boolean {
    for (;;) {
      if (this.type() === T_WORD) {
        this.noteName(this.word());
        this.p += 1;
      } else if (this.type() === T_OPEN) {
        this.group();
      } else {
        return false;
      }
      if (!this.alias()) return false;
      if (this.type() === T_COMMA) {
        this.p += 1;
        continue;
      }
      if (!JOIN_WORDS.has(this.word())) return true;
      while (JOIN_WORDS.has(this.word())) this.p += 1;
      if (this.word() === 'on') return false;
      // the joined table is read by the next round; its ON condition right after
      if (this.type(1) === T_KEYWORD && this.word(1) === 'on') {
        this.p += 2;
        if (this.expr() === E_FAIL) return false;
        return true;
      }
    }
  }

  private insert(): number {
    this.p += 1;
    if (this.word() === 'into') this.p += 1;
    if (this.type() !== T_WORD && this.type() !== T_FUNCTION) return S_FAIL;
    this.p += 1;
    if (this.type() === T_OPEN) this.group();
    const word = this.word();
    if (word === 'values' || word === 'value' || word === 'select' || word === 'set')
      return this.skipStatement();
    return S_FAIL;
  }

  private update(): number {
    this.p += 1;
    if (this.type() !== T_WORD) return S_FAIL;
    this.p += 1;
    if (this.word() !== 'set' || this.type(1) !== T_WORD) return S_FAIL;
    return this.word(2) === '=' ? this.skipStatement() : S_FAIL;
  }

  private delete(): number {
    this.p += 1;
    if (this.word() === 'from') this.p += 1;
    if (this.type() !== T_WORD) return S_FAIL;
    this.p += 1;
    if (this.word() === 'where' && this.type() === T_KEYWORD) {
      this.p += 1;
      const summary = this.expr();
      return summary & E_COMPARE ? S_STRONG : S_FAIL;
    }
    return S_WEAK;
  }

  private definition(word: string): number {
    this.p += 1;
    if (OBJECT_KINDS.has(this.word())) {
      this.p += 1;
      if (this.word() === 'if') this.skipWords('if', 'not', 'exists');
      const type = this.type();
      if (type !== T_WORD && type !== T_STRING && type !== T_FUNCTION && type !== T_KEYWORD) return S_FAIL;
      this.p += 1;
      if (word === 'create') return this.skipStatement(); // a definition's body is free-form
      if (this.type() === T_OPEN) this.group();
      return S_STRONG;
    }
    if (word === 'truncate' && this.type() === T_WORD) {
      this.p += 1;
      return S_WEAK;
    }
    return S_FAIL;
  }

  private execute(): number {
    this.p += 1;
    const type = this.type();
    const name = this.word();
    if (type === T_OPEN) {
      this.group();
      return S_WEAK;
    }
    if (type !== T_WORD && type !== T_FUNCTION) return S_FAIL;
    this.p += 1;
    const system =
      name.startsWith('xp_') || name.startsWith('sp_') || name.includes('..xp_') || name.includes('.xp_');
    if (system) this.features |= F_PROBE;
    if (type === T_FUNCTION && this.type() === T_OPEN) this.group();
    while (this.type() === T_STRING || this.type() === T_NUMBER || this.type() === T_VARIABLE) {
      this.p += 1;
      if (this.type() !== T_COMMA) break;
      this.p += 1;
    }
    const next = this.type();
    const ends = next === 0 || next === T_SEMICOLON || next === T_COMMENT;
    if (system) return S_STRONG;
    return ends ? S_WEAK : S_FAIL;
  }
}
