/**
 * Signs of script outside of tags: `javascript:` URLs (however they are broken up), calls of the
 * functions every XSS proof uses, breakouts from a JS string, template expressions that reach
 * the Function constructor, and CSS `expression(…)`. Each returns a score and leaves the blamed
 * span in `signalSpan`.
 */
export const signalSpan = { start: 0, end: 0 };

function blame(start: number, end: number, score: number): number {
  signalSpan.start = start;
  signalSpan.end = end;
  return score;
}

const SCHEMES = ['javascript', 'vbscript', 'livescript', 'mocha'];
const LONGEST_SCHEME = 10;
/** How far back from a `:` the letters of a broken-up scheme are looked for. */
const MAX_SCHEME_SPAN = 64;

/** Characters browsers drop from a URL scheme: whitespace, controls, and backslashes of JS escapes. */
function isIgnorable(code: number): boolean {
  return code <= 32 || code === 92 || code === 127 || code === 0xa0;
}

function isLowerLetter(code: number): boolean {
  return code >= 97 && code <= 122;
}

// Where the letters found by `schemeBefore` start.
let schemeStart = 0;
/** Lengths of `data` and of the script schemes: other runs of letters are not looked at. */
const SCHEME_LENGTHS = new Set([4, 5, 8, 10]);
const SCHEME_INITIALS = 'djvlm';

/** The scheme letters right before `colon`, skipping ignorables; '' if too long or none. */
function schemeBefore(lower: string, colon: number): string {
  let letters = 0;
  let i = colon - 1;
  schemeStart = colon;
  while (i >= 0 && colon - i <= MAX_SCHEME_SPAN) {
    const code = lower.charCodeAt(i);
    if (isLowerLetter(code)) {
      if (letters === LONGEST_SCHEME) return '';
      letters += 1;
      schemeStart = i;
    } else if (!isIgnorable(code)) {
      break;
    }
    i -= 1;
  }
  if (!SCHEME_LENGTHS.has(letters)) return '';
  // `http:` and `mailto:`-like schemes of the same lengths are common: build the name only if its first letter fits.
  if (!SCHEME_INITIALS.includes(lower[schemeStart]!)) return '';
  let scheme = '';
  for (let j = schemeStart; j < colon; j += 1) if (isLowerLetter(lower.charCodeAt(j))) scheme += lower[j];
  return scheme;
}

/** What follows `javascript:` looks like code: a call, a comment, a string, an operator. */
function looksLikeCode(lower: string, from: number): boolean {
  let i = from;
  while (i < lower.length && isIgnorable(lower.charCodeAt(i))) i += 1;
  if (i >= lower.length) return false;
  const code = lower.charCodeAt(i);
  if (isLowerLetter(code) || code === 95 || code === 36) {
    let j = i;
    while (j < lower.length && /[a-z0-9_$.[\]'"]/.test(lower[j]!)) j += 1;
    const name = lower.slice(i, j);
    if (name === 'void') return false; // `javascript:void(0)`, the inert link of old HTML
    while (j < lower.length && isIgnorable(lower.charCodeAt(j))) j += 1;
    return j < lower.length && '(`=:;'.includes(lower[j]!);
  }
  return '/\'"(`[{!+-~%&'.includes(lower[i]!);
}

const MAX_BASE64_PEEK = 120;

/** `data:text/html,…`, `data:image/svg+xml;…`, or any data URL whose (base64) content is markup. */
function dataUrlHoldsMarkup(lower: string, text: string, start: number): boolean {
  const head = lower.slice(start, start + 200).replace(/[\s\\]+/g, '');
  if (DATA_MARKUP_TYPES.test(head)) return true;
  const comma = head.indexOf(',');
  if (comma < 0) return false;
  if (head[comma + 1] === '<') return true;
  if (!head.slice(0, comma).endsWith('base64') || lower.length !== text.length) return false;
  // Base64 is case-sensitive: decode from the original text (same indices, as lengths agree).
  const originalComma = text.indexOf(',', start);
  const payload = text
    .slice(originalComma + 1, originalComma + 1 + MAX_BASE64_PEEK)
    .replace(/[^A-Za-z0-9+/]/g, '');
  return Buffer.from(payload.slice(0, payload.length - (payload.length % 4)), 'base64')
    .toString('latin1')
    .includes('<');
}

const DATA_MARKUP_TYPES =
  /^data:[\s\\]*(?:text\/(?:html|xml|javascript|vbscript)|application\/(?:x-)?(?:javascript|xhtml\+xml|ecmascript)|image\/svg\+xml)/;

/** `javascript:`, `vbscript:` (also as `jav&#x09;ascript:`, `java\0script:`) and `data:` URLs with markup or script. */
export function scriptUrlScore(lower: string, text: string): number {
  let best = 0;
  let leadingBlanks = 0;
  while (leadingBlanks < lower.length && lower.charCodeAt(leadingBlanks) <= 32) leadingBlanks += 1;
  for (let colon = lower.indexOf(':'); colon >= 0; colon = lower.indexOf(':', colon + 1)) {
    const scheme = schemeBefore(lower, colon);
    const start = schemeStart;
    if (scheme === 'data') {
      if (dataUrlHoldsMarkup(lower, text, start)) best = Math.max(best, blame(start, colon + 40, 80));
      continue;
    }
    if (!SCHEMES.includes(scheme)) continue;
    if (looksLikeCode(lower, colon + 1)) return blame(start, colon + 30, 85);
    // The whole value is a script URL (`javascript:`), even with nothing after it yet.
    const alone =
      start <= leadingBlanks &&
      lower.slice(colon + 1, colon + 64).trim() === '' &&
      colon + 64 >= lower.length;
    best = Math.max(best, blame(start, colon + 20, alone ? 55 : 30));
  }
  return best;
}

// Functions every XSS proof calls, and ways of reaching them without writing their name plainly.
const PROOF_CALL = /(?:^|[^\w$])(?:alert|prompt|confirm)\s*(?:\(|`|\)\s*\(|\.(?:call|apply|bind)\s*\()/g;
/** What an argument of code starts with: a literal, a quote of any kind, an expression, nothing. */
const CODE_ARGUMENT =
  /^\s*(?:$|\)|[\d'"`/[{(+\-!~\\\u2018\u2019\u201c\u201d]|(?:document|window|top|self|parent|this|origin|domain|location|navigator|string|event|atob|eval|new)\b)/;
/** `alert(str)`: a bare name as argument counts when code, not prose, follows the call. */
const NAME_ARGUMENT = /^\s*[\w$.[\]]{1,40}\s*\)\s*(?:$|[;)}\]<>,/'"`|&+-])/;

/** `alert(1)`, `prompt(document.domain)`, `alert(str);` — not `confirm(ation) email sent`. */
function isProofCall(lower: string, match: RegExpExecArray): boolean {
  const end = match.index + match[0].length;
  if (!match[0].endsWith('(')) return true;
  const argument = lower.slice(end, end + 60);
  return CODE_ARGUMENT.test(argument) || NAME_ARGUMENT.test(argument);
}
/** `a=alert`, `[1].find(alert)`, `${alert}`: the function passed around as a value, to be called later. */
const PROOF_REFERENCE =
  /[=(,[{:]\s*(?:\$\{\s*)?(?:alert|prompt|confirm)\s*[,;)}\]]|[=(,[{:]\s*(?:alert|prompt|confirm)\s*$/;
const DANGEROUS_SINK =
  /\b(?:document\s*\.\s*(?:cookie|domain|write(?:ln)?\s*\(|location)|window\s*\.\s*(?:location|name\s*=)|\.innerhtml\s*=|string\s*\.\s*fromcharcode\s*\(|(?:settimeout|setinterval|execscript)\s*\(\s*['"`]|new\s+function\s*\(|constructor\s*\.\s*constructor\s*\(|\[\s*['"`]constructor['"`]\s*\]|\beval\s*\(\s*(?:atob|unescape|string|location|name|decodeuri)|\batob\s*\(|(?:top|self|parent|window|globalthis|frames)\s*\[[^\]]{1,80}\]\s*[(`]|window\s*\.\s*open\s*\(|(?:^|[^\w$])location(?:\s*\.\s*href)?\s*=\s*['"`]?\s*(?:https?:|javascript:|data:|\/\/))/g;
const EVAL_CALL = /\beval\s*\(\s*[^)\s]/;
/** A quote, `;` or `</script>` shortly before a call: a breakout from the string it was placed in. */
const BREAKOUT_BEFORE = /['"`;]\s*[-+*/%|&^,;)\]}]*\s*$|<\/script>\s*$/;

/** Names at least one of which every call rule below mentions: a cheap first pass. */
const SCRIPT_WORD =
  /alert|prompt|confirm|document|window\s*[.[]|innerhtml|fromcharcode|settimeout|setinterval|execscript|function|constructor|(?:top|self|parent|frames|globalthis)\s*\[|location|eval|atob/;

/** Plain words right after a call or property: code mentioned in prose, not run. */
const PROSE_AFTER = /^[^\s<>;]{0,40}?\)?\s+[a-z]{2,}(?:\s+[a-z]{2,}|[.!?]?\s*$)/;

function proseAfter(lower: string, from: number): boolean {
  return PROSE_AFTER.test(lower.slice(from, from + 80));
}

/** Calls of `alert`/`prompt`/`confirm`, Function-constructor tricks, cookie theft. */
export function scriptCallScore(lower: string): number {
  if (!SCRIPT_WORD.test(lower)) return 0;
  let best = 0;
  PROOF_CALL.lastIndex = 0;
  for (let match = PROOF_CALL.exec(lower); match !== null; match = PROOF_CALL.exec(lower)) {
    if (!isProofCall(lower, match)) continue;
    const before = lower.slice(Math.max(0, match.index - 12), match.index + 1);
    const breakout = BREAKOUT_BEFORE.test(before);
    if (!breakout && proseAfter(lower, match.index + match[0].length)) continue; // "alert('hi') shows a popup"
    best = Math.max(best, blame(match.index, match.index + 30, breakout ? 80 : 70));
    if (breakout) return best;
  }
  const reference = PROOF_REFERENCE.exec(lower);
  if (reference !== null) best = Math.max(best, blame(reference.index, reference.index + 30, 65));
  DANGEROUS_SINK.lastIndex = 0;
  const sink = DANGEROUS_SINK.exec(lower);
  if (sink !== null && !proseAfter(lower, sink.index + sink[0].length)) {
    best = Math.max(best, blame(sink.index, sink.index + 30, 65));
  }
  const evaluation = EVAL_CALL.exec(lower);
  if (evaluation !== null) best = Math.max(best, blame(evaluation.index, evaluation.index + 30, 55));
  return best;
}

const TEMPLATE_CODE =
  /constructor|\$eval|\$on\b|\$emit|tostring|fromcharcode|alert|prompt|confirm|\bthis\b|\$parent|\[\]\.|\(\s*\)\s*\(|_c\.|\$\{/;
const MAX_TEMPLATE = 400;

/** `{{constructor.constructor('alert(1)')()}}` and similar AngularJS / Vue sandbox escapes. */
export function templateScore(lower: string): number {
  let close = -1;
  for (let open = lower.indexOf('{{'); open >= 0; open = lower.indexOf('{{', open + 2)) {
    // The first `}}` after an opening stays the first for the next openings before it.
    if (close < open + 2) close = lower.indexOf('}}', open + 2);
    const body = lower.slice(
      open + 2,
      close < 0 ? open + MAX_TEMPLATE : Math.min(close, open + MAX_TEMPLATE),
    );
    if (TEMPLATE_CODE.test(body)) return blame(open, open + body.length + 2, 80);
    if (close < 0) return 0;
  }
  return 0;
}

/** `text` without its `/* … *\/` comments (an unclosed one runs to the end), in one pass. */
function withoutCssComments(text: string): string {
  let open = text.indexOf('/*');
  if (open < 0) return text;
  let kept = '';
  let from = 0;
  while (open >= 0) {
    kept += text.slice(from, open);
    const close = text.indexOf('*/', open + 2);
    if (close < 0) return kept;
    from = close + 2;
    open = text.indexOf('/*', from);
  }
  return kept + text.slice(from);
}

/** `style="x:expression(alert(1))"`, `behavior:url(…)`, `-moz-binding:url(…)` (IE and old Firefox script in CSS). */
export function cssScriptScore(lower: string): number {
  if (!lower.includes('ession') && !lower.includes('behavior') && !lower.includes('binding')) return 0;
  const compact = withoutCssComments(lower).replace(/[\s\\]+/g, '');
  const expression = compact.indexOf('expression(');
  if (expression >= 0) {
    const declaration = compact.slice(Math.max(0, expression - 80), expression);
    const colon = declaration.lastIndexOf(':');
    if (colon >= 0 && !/[;{}]/.test(declaration.slice(colon))) return blame(0, lower.length, 80);
  }
  if (/(?:behavior|-moz-binding):url\(/.test(compact)) return blame(0, lower.length, 70);
  return 0;
}

/** `onclick=` as the whole value: an attribute about to be completed by the page around it. */
const BARE_HANDLER =
  /^\s*on(?:click|dblclick|mouse[a-z]+|key[a-z]+|load|unload|error|focus[a-z]*|blur|change|submit|reset|select|input|drag[a-z]*|drop|scroll|resize|copy|cut|paste|touch[a-z]+|pointer[a-z]+|animation[a-z]+|transition[a-z]+|play|pause|ended|toggle|begin|end|message|hashchange|popstate|pageshow|wheel|contextmenu|abort|readystatechange|afterprint|beforeprint|beforeunload|search|start|finish|bounce)\s*=\s*$/;

const HANDLER_OUTSIDE_TAG = /(?:^|[\s"'`/;,])on[a-z]{3,24}\s*=\s*["'`]?\s*[\w$.[\]]{1,40}\s*[(`=]/g;

/** `" onmouseover="alert(1)`: an event handler written to break out of an attribute value. */
export function handlerBreakoutScore(lower: string): number {
  HANDLER_OUTSIDE_TAG.lastIndex = 0;
  const match = HANDLER_OUTSIDE_TAG.exec(lower);
  if (match !== null) return blame(match.index, match.index + match[0].length + 20, 75);
  return BARE_HANDLER.test(lower) ? blame(0, lower.length, 55) : 0;
}

const NAMESPACE_DECLARATION =
  /xmlns(?::[\w-]+)?\s*=\s*["']?[^"'\s>]*(?:w3\.org\/(?:1999\/xhtml|2000\/svg|1999\/xsl|1999\/xlink|tr\/wd-xsl)|urn:schemas-microsoft-com)/;

/** An XML namespace declaration for XHTML, SVG or XSLT: script-capable markup on its way. */
export function namespaceScore(lower: string): number {
  if (!lower.includes('xmlns')) return 0;
  const match = NAMESPACE_DECLARATION.exec(lower);
  return match === null ? 0 : blame(match.index, match.index + match[0].length, 55);
}

/** Closers of the contexts a value may land in: quotes, comments, CDATA, tags. */
const CLOSERS = ['"', "'", '`', '-->', ']]>', '*/', '</', '>'];
const CLOSER_WINDOW = 12;
const MIN_CLOSER_KINDS = 4;

/**
 * A polyglot closing sequence (`'"\`-->]]>`): several different contexts closed in a few
 * characters, so that whatever follows runs whichever context the value was reflected in.
 */
export function closerClusterScore(text: string): number {
  if (/^\s*--!?>/.test(text)) return blame(0, 8, 50); // closes the comment the value was reflected in
  for (let i = text.indexOf('-->'); i >= 0; i = text.indexOf('-->', i + 3)) {
    const window = text.slice(Math.max(0, i - CLOSER_WINDOW), i + CLOSER_WINDOW);
    let kinds = 0;
    for (const closer of CLOSERS) if (window.includes(closer)) kinds += 1;
    if (kinds >= MIN_CLOSER_KINDS) return blame(Math.max(0, i - CLOSER_WINDOW), i + CLOSER_WINDOW, 60);
  }
  return 0;
}
