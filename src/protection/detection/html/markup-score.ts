import { attributeScore } from './attribute-score.ts';
import { BREAKOUT_CLOSERS, DECLARATION_SCORES, ELEMENT_SCORES, SVG_ELEMENTS } from './element-tables.ts';
import { CLOSE_TAG, COMMENT, DECLARATION, HtmlTagReader, OPEN_TAG } from './html-tag-reader.ts';

const NAMESPACED_ELEMENT_SCORE = 50;
const CONDITIONAL_COMMENT_SCORE = 60;
/** An HTML comment hides the rest of a page, or ends one (`-->`) to escape it. */
const COMMENT_SCORE = 50;
const MISPLACED_PROLOG_SCORE = 55;
/** Control characters inside a tag are there to split keywords for one parser and not another. */
const CONTROL_IN_TAG_SCORE = 55;
const SVG_ELEMENT_SCORE = 50;
/** `<body …>` with attributes restyles or scripts the whole page. */
const BODY_ATTRIBUTES_SCORE = 50;
const INPUT_SCORE = 50;
const PASSWORD_INPUT_SCORE = 60;
/** Elements scored by having attributes at all: SVG shapes, `body`, form inputs. */
const ATTRIBUTED_ELEMENTS = new Set([...SVG_ELEMENTS, 'body', 'input']);

const reader = new HtmlTagReader();

/** Where the best tag of the last `markupScore` call is. */
export const markupSpan = { start: 0, end: 0 };

/** Longest element name in the tables; longer names are custom elements, scored by attributes. */
const MAX_KNOWN_NAME = 16;

/**
 * Best score over the tags, comments and declarations of `text`. `controls` says whether the
 * text has control characters at all (else no tag needs to be searched for them).
 */
export function markupScore(text: string, controls = true): number {
  reader.reset(text);
  let best = 0;
  firstTag = true;
  while (reader.next()) {
    const score = tagScore(text, controls);
    firstTag = false;
    if (score > best) {
      best = score;
      markupSpan.start = reader.tagStart;
      markupSpan.end = reader.tagEnd;
    }
  }
  return best;
}

// Whether the tag being scored is the first of the value (set by `markupScore`).
let firstTag = true;

function tagScore(text: string, controls: boolean): number {
  if (reader.kind === COMMENT) {
    const conditional = text.slice(reader.tagStart, reader.tagStart + 8).toLowerCase() === '<!--[if ';
    return conditional ? CONDITIONAL_COMMENT_SCORE : COMMENT_SCORE;
  }
  if (reader.kind === DECLARATION) {
    const head = text.slice(reader.tagStart, reader.tagStart + 64).toLowerCase();
    // `<?xml …?>` and `<!doctype …>` belong at the start of a document; after markup they open an injected one.
    const misplaced = !firstTag && /^<(?:\?xml\s|!doctype)/.test(head);
    return misplaced ? MISPLACED_PROLOG_SCORE : declarationScore(head);
  }
  const nameLength = reader.nameEnd - reader.nameStart;
  // The common case first: `<a>`, `<b>`, `<p>` without attributes (or a flood of them).
  if (nameLength < 3 && reader.attributeCount === 0 && !controls && reader.kind === OPEN_TAG) {
    if ((text.charCodeAt(reader.nameStart) | 0x20) !== 103 || nameLength !== 1) return 0;
  }
  const long = nameLength > MAX_KNOWN_NAME;
  // One- and two-letter elements (`a`, `b`, `p`, `em`) score by their attributes; `g` is SVG.
  const name =
    long || (nameLength < 3 && (text.charCodeAt(reader.nameStart) | 0x20) !== 103) ? '' : reader.name();
  const local = localName(name);
  const namespaced = local !== name || (long && text.lastIndexOf(':', reader.nameEnd) > reader.nameStart);
  if (reader.kind === CLOSE_TAG) {
    return (
      BREAKOUT_CLOSERS.get(local) ?? (namespaced || local.startsWith('fe') ? NAMESPACED_ELEMENT_SCORE : 0)
    );
  }
  if (reader.kind !== OPEN_TAG) return 0;
  let score = ELEMENT_SCORES.get(local) ?? (namespaced ? NAMESPACED_ELEMENT_SCORE : 0);
  if (local === 'script' && reader.attributeCount === 0 && proseFollows(text, reader.tagEnd))
    score = SCRIPT_IN_PROSE_SCORE;
  if (reader.attributeCount > 0 && ATTRIBUTED_ELEMENTS.has(local)) {
    score = Math.max(score, attributedElementScore(local, text));
  }
  if (controls && hasControlInTag(text, reader.tagStart, reader.tagEnd)) {
    score = Math.max(score, CONTROL_IN_TAG_SCORE);
  }
  for (let i = 0; i < reader.attributeCount; i += 1)
    score = Math.max(score, attributeScore(reader, text, i, local));
  return score;
}

const SCRIPT_IN_PROSE_SCORE = 45;
const CODE_CHARACTERS = /[()=;`{}'"<[\]]|\.[a-z]/i;

/**
 * "The <script> tag goes in the head": a bare `<script>` followed by words, not code. A script
 * element with content that looks like code, with a `src`, or at the end of the value is not.
 */
function proseFollows(text: string, from: number): boolean {
  const after = text.slice(from, from + 80);
  return /[a-z]{2,}\s+[a-z]{2,}/i.test(after) && !CODE_CHARACTERS.test(after);
}

function declarationScore(head: string): number {
  for (const [pattern, score] of DECLARATION_SCORES) if (pattern.test(head)) return score;
  return 0;
}

/** `svg:script` → `script`; `html:img` → `img`. */
function localName(name: string): string {
  const colon = name.lastIndexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

/** Elements that are harmless bare but not with attributes: SVG shapes, form inputs (password harvesting). */
function attributedElementScore(local: string, text: string): number {
  if (SVG_ELEMENTS.has(local)) return SVG_ELEMENT_SCORE;
  if (local === 'body') return BODY_ATTRIBUTES_SCORE;
  const tag = text.slice(reader.tagStart, reader.tagEnd).toLowerCase();
  return /type\s*=\s*["']?password/.test(tag) ? PASSWORD_INPUT_SCORE : INPUT_SCORE;
}

function hasControlInTag(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) {
    const code = text.charCodeAt(i);
    // Tab, LF, FF and CR are HTML whitespace; the other controls are not.
    if ((code < 32 && code !== 9 && code !== 10 && code !== 12 && code !== 13) || code === 127) return true;
  }
  return false;
}
