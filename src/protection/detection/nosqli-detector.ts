import { AMP, BRACE, BRACKET, DOLLAR, PAREN, PIPE, SEMI } from './char-flags.ts';
import { ANY_PLACE, type ClassDetector, IS_KEY, type Subject } from './subject.ts';

/** MongoDB query and update operators an attacker injects (`{"$ne": null}`, `user[$gt]=`). */
const OPERATORS = new Set(
  (
    'ne eq gt gte lt lte in nin regex where exists expr function accumulator or and not nor elemmatch size ' +
    'type mod all text search jsonschema lookup func options where where set unset push pull inc rename ' +
    'natural meta slice comment'
  ).split(' '),
);
/** `$`-keys that are legitimate JSON (JSON Schema, JSON-LD style references). */
const JSON_SCHEMA_KEYS = new Set([
  '$schema',
  '$ref',
  '$id',
  '$defs',
  '$anchor',
  '$vocabulary',
  '$dynamicref',
]);

const SCORE = {
  operatorKey: 90,
  unknownOperatorKey: 65,
  operatorInValue: 85,
  whereClause: 85,
  shellCall: 85,
  jsCondition: 75,
  jsReturn: 75,
  jsTautology: 70,
  jsDelay: 70,
  unknownOperatorInValue: 60,
} as const;

// `[$ne]`, `{"$gt":`, `{ $ne: 1`, `, $where:`: an operator where a key goes.
const OPERATOR_IN_VALUE = /(?:\[\s*|[{,]\s*["']?|^\s*["']?)\$([a-z]{2,20})["']?\s*[\]:]/gi;
const WHERE_CLAUSE = /\$where\s*["']?\s*[:=]/i;
const SHELL_CALL =
  /\bdb\s*\.\s*(?:[\w$]+\s*\.\s*(?:insert|insertone|insertmany|find|findone|update|updateone|updatemany|remove|drop|mapreduce|aggregate|save|deleteone|deletemany|count)|getcollection|dropdatabase|eval|getsiblingdb)\s*\(/i;
const JS_CONDITION = /(?:['"]\s*(?:&&|\|\|)\s*)this\s*\.|\bthis\s*\.\s*[\w$]+\s*(?:\.\s*match\s*\(|[=!]==?)/;
const JS_RETURN = /;\s*return\s*(?:true|false|\d|['"(]|this\b|[\w$]+\s*[=!<>]=)/;
const JS_DELAY = /\bsleep\s*\(\s*\d+\s*\)(?!\s*[a-z]{2})|while\s*\([^)]{0,40}(?:date|-\s*\w+\s*<)/;
/** Words every JavaScript rule below needs one of: a cheap first pass. */
const JS_HINT = /\$where|\bdb\s*\.|this\s*\.|return|sleep|while|\|\||&&/i;
// The right-hand literal may be left open: the query around the value closes it (`' || '1'=='1`).
const JS_TAUTOLOGY =
  /(?:\|\||&&)\s*('[^']{0,20}'|"[^"]{0,20}"|\d{1,6}|true)\s*===?\s*('[^']{0,20}'?|"[^"]{0,20}"?|\d{1,6}|true)/;

/**
 * NoSQL (MongoDB) injection: `$` operators where keys go — in JSON keys, in bracketed query
 * keys (`password[$ne]=`), and inside string values that carry JSON or query syntax — plus the
 * JavaScript of `$where` (`this.password.match(…)`, `';return true;'`, `sleep(5000)`).
 */
export const nosqliDetector: ClassDetector = {
  attackClass: 'nosqli',
  scope: ANY_PLACE | IS_KEY,
  score(subject: Subject): number {
    if (subject.where & IS_KEY) return keyScore(subject);
    if (!(subject.flags & (DOLLAR | PAREN | AMP | PIPE | SEMI | BRACE | BRACKET))) return 0;
    subject.mark(0, subject.text.length);
    const text = subject.text;
    let best = 0;
    if (subject.flags & DOLLAR) best = operatorScore(text);
    if (!JS_HINT.test(text)) return best;
    if (WHERE_CLAUSE.test(text)) best = Math.max(best, SCORE.whereClause);
    if (SHELL_CALL.test(text)) best = Math.max(best, SCORE.shellCall);
    if (JS_CONDITION.test(text)) best = Math.max(best, SCORE.jsCondition);
    if (JS_RETURN.test(text)) best = Math.max(best, SCORE.jsReturn);
    if (JS_DELAY.test(subject.lower)) best = Math.max(best, SCORE.jsDelay);
    if (tautology(text)) best = Math.max(best, SCORE.jsTautology);
    return best;
  },
};

function keyScore(subject: Subject): number {
  const key = subject.text;
  if (!key.includes('$') || JSON_SCHEMA_KEYS.has(key)) return 0;
  subject.mark(0, key.length);
  // `$ne` as a JSON key, or `[$ne]` inside a bracketed query key.
  const match = /(?:^|\[)\$([a-z]{2,20})(?:\]|$)/i.exec(key);
  if (match === null) return 0;
  return OPERATORS.has(match[1]!.toLowerCase()) ? SCORE.operatorKey : SCORE.unknownOperatorKey;
}

function operatorScore(text: string): number {
  let best = 0;
  OPERATOR_IN_VALUE.lastIndex = 0;
  for (let match = OPERATOR_IN_VALUE.exec(text); match !== null; match = OPERATOR_IN_VALUE.exec(text)) {
    const known = OPERATORS.has(match[1]!.toLowerCase());
    best = Math.max(best, known ? SCORE.operatorInValue : SCORE.unknownOperatorInValue);
    if (known) return best;
  }
  return best;
}

function unquoted(literal: string): string {
  return literal.replace(/^['"]|['"]$/g, '');
}

/** `|| 1==1`, `&& 'a'=='a'`: a JavaScript comparison of a literal with itself. */
function tautology(text: string): boolean {
  const match = JS_TAUTOLOGY.exec(text);
  return match !== null && unquoted(match[1]!) === unquoted(match[2]!);
}
