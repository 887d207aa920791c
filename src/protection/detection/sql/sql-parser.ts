import {
  E_COMPARE,
  E_FAIL,
  E_IDENTICAL,
  E_LITERAL_COMPARE,
  E_SINGLE,
  E_WORD,
  E_WORDY_STRING,
  F_CLOSERS,
  F_COMMENT,
  F_FILTER,
  F_GROUPING,
  F_LIST,
  F_LOGIC_COMPARE,
  F_LOGIC_LITERAL,
  F_LOGIC_WORD,
  F_OPERATOR,
  F_OPERATOR_COMPARE,
  F_PROBE,
  F_SEMICOLON_END,
  F_STACKED,
  F_STATEMENT,
  F_TAUTOLOGY,
  F_UNION_SELECT,
  F_WEAK_STATEMENT,
  LEAD_COMPOUND,
  LEAD_NONE,
  LEAD_SIMPLE,
  S_FAIL,
  S_STRONG,
} from './sql-features.ts';
import { SqlStatementReader } from './sql-statement-reader.ts';
import type { SqlTokens } from './sql-tokens.ts';
import {
  COMPARISONS,
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

/**
 * A forgiving recursive-descent reader of the SQL an injected value would form once pasted
 * into a query: an expression, then clauses (`OR …`, `UNION SELECT …`, `; DROP …`, `ORDER BY`,
 * a comment). It records what it sees as `features` and whether it ran into something SQL
 * cannot continue with (`stuck`), which is how prose that happens to contain SQL words fails.
 */
export class SqlParser extends SqlStatementReader {
  /** Clauses read after the lead (the legitimate part of the value). */
  clauseCount = 0;
  stuck = false;

  reset(tokens: SqlTokens, text: string, start: number): void {
    this.startReading(tokens, text, start);
    this.clauseCount = 0;
    this.stuck = false;
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
    else if (summary & (E_WORD | E_WORDY_STRING))
      this.features |= F_LOGIC_WORD; // `OR red`, `OR 'x'`
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
    if (type === T_KEYWORD && this.word() === 'begin') return this.stacked(); // `; BEGIN DECLARE …`
    if (type === T_OPEN) return this.exprList() !== E_FAIL; // `;(load_file(…))`: only what it holds counts
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
}
