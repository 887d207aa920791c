import { SqlExpressionReader } from './sql-expression-reader.ts';
import {
  E_BINOP,
  E_COMPARE,
  E_FAIL,
  E_WORD,
  F_DELAY,
  F_FILE,
  F_PROBE,
  S_FAIL,
  S_STRONG,
  S_WEAK,
} from './sql-features.ts';
import {
  JOIN_WORDS,
  OBJECT_KINDS,
  PRIVILEGES,
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
  T_STRING,
  T_VARIABLE,
  T_WORD,
} from './sql-words.ts';

/**
 * The middle layer of the SQL parser: whole statements (`SELECT … FROM …`, `DROP TABLE x`,
 * `EXEC xp_cmdshell …`, `WAITFOR DELAY '…'`). A statement is strong when only SQL is written
 * that way (a literal or a function in a select list, a FROM, `DROP TABLE`), weak when prose
 * could be (`select all that apply`), and fails on anything else (`Delete from my list the …`).
 */
export class SqlStatementReader extends SqlExpressionReader {
  protected statement(): number {
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
  protected skipStatement(): number {
    while (!this.atEnd() && this.type() !== T_SEMICOLON && this.type() !== T_COMMENT) this.p += 1;
    return S_STRONG;
  }

  protected select(): number {
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
      // `EXEC ('SEL' + 'ECT …')`: dynamic SQL built from strings.
      const before = this.p;
      this.group();
      return this.groupHoldsString(before) ? S_STRONG : S_WEAK;
    }
    if (name === 'immediate' && type === T_WORD) return this.skipStatement(); // Oracle's EXECUTE IMMEDIATE
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

  protected intoFile(): boolean {
    const target = this.word();
    if (target !== 'outfile' && target !== 'dumpfile') return false;
    this.p += 1;
    if (this.type() === T_STRING) this.p += 1;
    this.features |= F_FILE;
    return true;
  }
}
