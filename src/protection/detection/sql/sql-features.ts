/**
 * What the SQL parser reports and how its parts talk to each other: feature bits (what an
 * injection would do), expression summaries, operand kinds, statement outcomes.
 */
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

/** Summary of one expression (bits of what `expr` returns). */
export const E_FAIL = 0;
export const E_OK = 1;
export const E_COMPARE = 2;
export const E_LITERAL_COMPARE = 4;
export const E_SINGLE = 8;
export const E_LITERAL = 16;
export const E_WORD = 32;
export const E_BINOP = 64;
/** A comparison of an operand with itself (`x=x`, `f()=f()`, `'a'='a'`). */
export const E_IDENTICAL = 128;
/** The single operand is a string that is not a number (`'x'` is false in MySQL; `'1'` is true). */
export const E_WORDY_STRING = 256;

/** Kinds of operand. */
export const K_NONE = 0;
export const K_LITERAL = 1;
export const K_WORD = 2;

/** What `lead` found: nothing (the value starts with a clause), one operand, or an expression. */
export const LEAD_NONE = 0;
export const LEAD_SIMPLE = 1;
export const LEAD_COMPOUND = 2;

/** Outcome of a statement: not one, one made only of names, one only SQL writes. */
export const S_FAIL = 0;
export const S_WEAK = 1;
export const S_STRONG = 2;
