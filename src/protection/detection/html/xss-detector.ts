import { BACKTICK, BRACE, COLON, CONTROL, DOT, EQUALS, GT, LT, NON_ASCII, PAREN } from '../char-flags.ts';
import { ANY_PLACE, type ClassDetector, IS_KEY, type Subject } from '../subject.ts';
import { markupScore, markupSpan } from './markup-score.ts';
import {
  base64MarkupScore,
  encodedMarkupScore,
  MIN_BASE64_MARKUP,
  sevenBitMarkupScore,
  unterminatedTagScore,
} from './obfuscated-markup.ts';
import {
  closerClusterScore,
  cssScriptScore,
  handlerBreakoutScore,
  namespaceScore,
  scriptCallScore,
  scriptUrlScore,
  signalSpan,
  templateScore,
} from './script-signals.ts';

// The subject being scored and its best score so far (module state: scoring is synchronous).
let current: Subject;
let best = 0;

function raise(score: number, span: { start: number; end: number }): void {
  if (score > best) {
    best = score;
    current.mark(span.start, span.end);
  }
}

/**
 * Cross-site scripting: the decoded value is read as HTML (tags, attributes, values) and
 * dangerous elements, event handlers and script URLs are scored; then script outside tags is
 * looked for (breakouts from JS strings, proof-of-concept calls, template sandbox escapes, CSS
 * expressions, polyglot closers). `a < b`, `I <3 this`, `<b>bold</b>` and `Option<T>` hold no
 * dangerous element or attribute.
 */
export const xssDetector: ClassDetector = {
  attackClass: 'xss',
  scope: ANY_PLACE | IS_KEY,
  inspectsPlainWord: (word) => word.length >= MIN_BASE64_MARKUP && word.charCodeAt(0) === 80 /* P */,
  score(subject: Subject): number {
    current = subject;
    best = 0;
    const flags = subject.flags;
    const text = subject.text;
    if (flags & LT) {
      raise(markupScore(text, (subject.flags & CONTROL) !== 0), markupSpan);
      if (subject.layers !== 0) raise(encodedMarkupScore(subject.raw, text), markupSpan);
      raise(unterminatedTagScore(text), markupSpan);
    }
    if (flags & GT) raise(closerClusterScore(text), signalSpan);
    if (subject.rawFlags & NON_ASCII) raise(sevenBitMarkupScore(subject.raw), markupSpan);
    raise(base64MarkupScore(text), markupSpan);
    if (flags & (COLON | PAREN | BACKTICK | EQUALS | DOT | BRACE)) scoreScript(subject);
    return best;
  },
};

function scoreScript(subject: Subject): void {
  const flags = subject.flags;
  const lower = subject.lower;
  if (flags & COLON) raise(scriptUrlScore(lower, subject.text), signalSpan);
  raise(scriptCallScore(lower), signalSpan);
  if (flags & BRACE) raise(templateScore(lower), signalSpan);
  if (flags & EQUALS) raise(handlerBreakoutScore(lower), signalSpan);
  if (flags & (COLON | PAREN)) raise(cssScriptScore(lower), signalSpan);
  if (flags & EQUALS) raise(namespaceScore(lower), signalSpan);
}
