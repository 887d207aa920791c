import { DQUOTE, QUOTES, SQUOTE } from '../char-flags.ts';
import { ANY_PLACE, type ClassDetector, IS_KEY, type Subject } from '../subject.ts';
import {
  F_CLOSERS,
  F_COMMENT,
  F_DELAY,
  F_FILE,
  F_FILTER,
  F_GROUPING,
  F_LOGIC_COMPARE,
  F_LOGIC_LITERAL,
  F_LOGIC_WORD,
  F_OPERATOR,
  F_OPERATOR_COMPARE,
  F_PROBE,
  F_SEMICOLON_END,
  F_STACKED,
  F_STATEMENT,
  F_SUBSELECT,
  F_SYSTEM_TABLE,
  F_SYSTEM_VARIABLE,
  F_TAUTOLOGY,
  F_UNION_SELECT,
  LEAD_COMPOUND,
  LEAD_NONE,
} from './sql-features.ts';
import { SqlParser } from './sql-parser.ts';
import { mayContainSql } from './sql-prescreen.ts';
import { AS_IS, IN_DOUBLE_QUOTES, IN_SINGLE_QUOTES, SqlTokens } from './sql-tokens.ts';
import { SYSTEM_TABLES, T_WORD } from './sql-words.ts';

/** Confidence per kind of evidence (see `scoreFeatures`). */
const SCORE = {
  unionSelect: 90,
  stacked: 85,
  delay: 85,
  file: 85,
  tautology: 85,
  probe: 75,
  statement: 75,
  systemVariable: 70,
  systemTable: 70,
  systemTableAlone: 60,
  logicCompare: 70,
  grouping: 70,
  subselect: 70,
  filter: 70,
  logicLiteral: 65,
  commentTruncation: 65,
  operatorCompare: 65,
  looseLogicLiteral: 40,
  operator: 55,
  semicolon: 55,
  logicWord: 45,
  /** Strong evidence inside text that is not SQL as a whole. */
  strongInProse: 60,
  /** Taken off strong evidence when the parse ran into prose. */
  stuckPenalty: 15,
  commentBonus: 10,
} as const;

const STRONG = [
  [F_UNION_SELECT, SCORE.unionSelect],
  [F_STACKED, SCORE.stacked],
  [F_DELAY, SCORE.delay],
  [F_FILE, SCORE.file],
  [F_PROBE, SCORE.probe],
  [F_SYSTEM_VARIABLE, SCORE.systemVariable],
  [F_SYSTEM_TABLE, SCORE.systemTable],
] as const;

const tokens = new SqlTokens();
const parser = new SqlParser();

/**
 * SQL injection: the value is tokenized as SQL three times (as-is, as if inside '…', as if
 * inside "…"), each token stream is read by `SqlParser`, and the features it found are scored.
 * Prose with SQL words fails to parse (`Delete from my list the items …` has barewords where
 * SQL cannot have them); names like O'Brien break out of a string into a bareword, which no
 * injection does.
 */
export const sqliDetector: ClassDetector = {
  attackClass: 'sqli',
  scope: ANY_PLACE | IS_KEY,
  score(subject: Subject): number {
    if (!(subject.flags & QUOTES) && !mayContainSql(subject.text)) return 0;
    // A prime (′) stands for a quote in payloads copied through word processors.
    const text = subject.text.includes('\u2032') ? subject.text.replaceAll('\u2032', "'") : subject.text;
    let best = 0;
    for (const context of CONTEXTS) {
      if (context === IN_SINGLE_QUOTES && !(subject.flags & SQUOTE)) continue;
      if (context === IN_DOUBLE_QUOTES && !(subject.flags & DQUOTE)) continue;
      const score = analyse(text, context);
      if (score > best) {
        best = score;
        subject.mark(spanStart, spanEnd);
      }
    }
    return best;
  },
};

const CONTEXTS = [AS_IS, IN_SINGLE_QUOTES, IN_DOUBLE_QUOTES] as const;

// Span of the last analysis that scored (set by `analyse`, read right after it).
let spanStart = 0;
let spanEnd = 0;

function analyse(text: string, context: number): number {
  tokens.reset(text, context);
  if (tokens.type(1) === 0) return context === AS_IS ? systemTableAlone(text) : 0;
  let breakout = false;
  let continuation = false;
  let shapeOfInjection = true;
  spanStart = 0;
  if (context === AS_IS) {
    parser.reset(tokens, text, 0);
    const lead = parser.lead();
    shapeOfInjection = lead !== LEAD_COMPOUND;
    // A value that starts with a clause (` OR 1`, ` AND true`) continues a query, like a breakout.
    continuation = lead === LEAD_NONE;
  } else {
    if (!tokens.closed[0]) return 0;
    breakout = true;
    spanStart = tokens.ends[0]! - 1;
    parser.reset(tokens, text, 1);
  }
  parser.clauses(breakout);
  const clean = !parser.stuck;
  let score = scoreFeatures(
    parser.features,
    breakout || continuation,
    breakout,
    shapeOfInjection,
    parser.clauseCount,
    clean,
  );
  if (score === 0 && !clean) score = strongInProse(text);
  const last = Math.min(tokens.count, Math.max(parser.p, 1)) - 1;
  spanEnd = clean ? text.length : tokens.ends[last]!;
  return score;
}

/** A value that is only the name of a system table (`information_schema.tables`, `mysql.user`). */
function systemTableAlone(text: string): number {
  if (tokens.count !== 1 || tokens.types[0] !== T_WORD) return 0;
  const name = tokens.words[0]!;
  const system = SYSTEM_TABLES.has(name) || SYSTEM_SCHEMAS.some((schema) => name.startsWith(schema));
  spanStart = 0;
  spanEnd = text.length;
  return system ? SCORE.systemTableAlone : 0;
}

const SYSTEM_SCHEMAS = ['information_schema.', 'mysql.', 'pg_catalog.', 'sys.', 'master..', 'master.dbo.'];

function scoreFeatures(
  features: number,
  continuation: boolean,
  breakout: boolean,
  shapeOfInjection: boolean,
  clauses: number,
  clean: boolean,
): number {
  let strong = 0;
  for (const [feature, score] of STRONG) if (features & feature) strong = Math.max(strong, score);
  let weak = 0;
  const raise = (score: number): void => {
    weak = Math.max(weak, score);
  };
  if (features & F_TAUTOLOGY) raise(SCORE.tautology);
  if (shapeOfInjection) {
    if (features & F_LOGIC_COMPARE) raise(SCORE.logicCompare);
    if (features & F_GROUPING) raise(SCORE.grouping);
    if (features & F_FILTER) raise(SCORE.filter);
    if (features & F_STATEMENT) raise(SCORE.statement);
    if (features & F_SUBSELECT && clauses > 0) raise(SCORE.subselect);
    if (features & F_LOGIC_LITERAL) {
      raise(
        continuation || features & (F_COMMENT | F_CLOSERS) ? SCORE.logicLiteral : SCORE.looseLogicLiteral,
      );
    }
  }
  if (breakout) {
    if (clauses === 0 && features & F_COMMENT) raise(SCORE.commentTruncation);
    if (features & F_OPERATOR_COMPARE) raise(SCORE.operatorCompare);
    else if (features & F_OPERATOR) raise(SCORE.operator);
    if (features & F_SEMICOLON_END && clauses === 1) raise(SCORE.semicolon);
    if (features & F_LOGIC_WORD) raise(SCORE.logicWord);
  }
  // Prose after a payload keeps strong evidence; prose around a lone call (`sleep(5) minutes`) does not.
  if (!clean) return strong > 0 && (clauses > 0 || continuation) ? strong - SCORE.stuckPenalty : 0;
  let score = Math.max(strong, weak);
  if (score > 0 && clauses > 0 && features & F_COMMENT) score += SCORE.commentBonus;
  return Math.min(100, score);
}

// A delay call with a number, `WAITFOR DELAY '…'`, `UNION SELECT` and a select list, `@@version`.
const STRONG_IN_PROSE =
  /\b(?:sleep|benchmark|pg_sleep|randomblob)\s*\(\s*\d[^)]{0,40}\)(?!\s*[a-z]{2})|\bwaitfor\s+(?:delay|time)\s*['"\d]|\bunion(?:\s+(?:all|distinct))?[\s(]+select\s*(?:[\d'"@(*]|null\b|[a-z_]+\s*\()|@@[a-z_]/i;

/** Evidence that counts even when the whole value is not SQL (a payload after some prose). */
function strongInProse(text: string): number {
  return STRONG_IN_PROSE.test(text) ? SCORE.strongInProse : 0;
}
