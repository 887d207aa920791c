import { NEWLINE, NON_ASCII } from './char-flags.ts';
import { ANY_PLACE, type ClassDetector, IS_KEY, type Subject } from './subject.ts';

/** Response headers whose injection changes what the client does (cookies, redirects, content). */
const KNOWN_HEADERS = new Set(
  (
    'set-cookie location content-type content-length content-disposition content-encoding refresh ' +
    'transfer-encoding host cookie connection cache-control link x-xss-protection x-frame-options ' +
    'x-content-type-options content-security-policy strict-transport-security access-control-allow-origin ' +
    'access-control-allow-credentials www-authenticate authorization x-forwarded-for x-forwarded-host ' +
    'referer user-agent upgrade expires pragma vary etag last-modified server x-powered-by'
  ).split(' '),
);

const SHORTEST_KNOWN_HEADER = 4;

const SCORE = {
  knownHeader: 85,
  statusLine: 85,
  encodedHeader: 75,
  splitBody: 80,
  rawHeaderLike: 40,
} as const;

const MARKUP_START = /^[ \t]*<(?:html|script|body|svg|img|iframe|a\s)/i;

function countLineFeeds(text: string, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i += 1) if ((text.charCodeAt(i) & 0xff) === 10) count += 1;
  return count;
}
const MAX_HEADER_NAME = 40;

function isNameChar(code: number): boolean {
  const lower = code | 0x20;
  return (lower >= 97 && lower <= 122) || (code >= 48 && code <= 57) || code === 45;
}

// End of the header name read by `headerNameEnd`; where it starts.
let nameStart = 0;

function isLetter(code: number): boolean {
  const lower = code | 0x20;
  return lower >= 97 && lower <= 122;
}

/** If a header line (`Name:`) starts at `start`, the index after its name (start in `nameStart`); else -1. */
function headerNameEnd(text: string, start: number): number {
  let i = start;
  while (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) i += 1;
  nameStart = i;
  if (!isLetter(text.charCodeAt(i))) return -1;
  while (i < text.length && i - nameStart <= MAX_HEADER_NAME && isNameChar(text.charCodeAt(i))) i += 1;
  const end = i;
  while (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) i += 1;
  return text.charCodeAt(i) === 58 /* : */ ? end : -1;
}

/** `HTTP/` at `start`: a second response (splitting). */
function isStatusLine(text: string, start: number): boolean {
  return (
    (text.charCodeAt(start) | 0x20) === 104 &&
    (text.charCodeAt(start + 1) | 0x20) === 116 &&
    (text.charCodeAt(start + 2) | 0x20) === 116 &&
    (text.charCodeAt(start + 3) | 0x20) === 112 &&
    text.charCodeAt(start + 4) === 47
  );
}

/** A line break: CR, LF, or a character whose low byte is one (`%E5%98%8A`, cut to 0x0A by old servers). */
function isBreak(code: number): boolean {
  return code === 10 || code === 13 || (code > 0xff && ((code & 0xff) === 10 || (code & 0xff) === 13));
}

/**
 * CRLF / header injection: a line break (raw, percent- or escape-encoded, or a Unicode character
 * truncated to one) followed by a header line or an HTTP status line, which splits a response or
 * adds headers where the value is reflected. A multi-line text field ("name: John\nage: 30")
 * has raw breaks and names no response header, and stays below the threshold.
 */
export const crlfDetector: ClassDetector = {
  attackClass: 'crlf',
  scope: ANY_PLACE | IS_KEY,
  score(subject: Subject): number {
    if (!(subject.flags & (NEWLINE | NON_ASCII))) return 0;
    const text = subject.text;
    const encoded = !(subject.rawFlags & NEWLINE);
    let best = 0;
    for (let i = 0; i < text.length; i += 1) {
      if (!isBreak(text.charCodeAt(i))) continue;
      let next = i + 1;
      while (next < text.length && isBreak(text.charCodeAt(next))) next += 1;
      const score = lineScore(text, i, next, encoded);
      if (score > best) {
        best = score;
        subject.mark(i, next + 40);
      }
      i = next - 1;
    }
    return best;
  },
};

function lineScore(text: string, breakStart: number, lineStart: number, encoded: boolean): number {
  if (isStatusLine(text, lineStart)) return SCORE.statusLine;
  const end = headerNameEnd(text, lineStart);
  if (end >= 0) {
    const length = end - nameStart;
    if (length >= SHORTEST_KNOWN_HEADER && KNOWN_HEADERS.has(text.slice(nameStart, end).toLowerCase())) {
      return SCORE.knownHeader;
    }
    return encoded ? SCORE.encodedHeader : SCORE.rawHeaderLike;
  }
  // A blank line (two line feeds) then markup: the rest of the value becomes a response body.
  const blankLine = countLineFeeds(text, breakStart, lineStart) >= 2;
  if (encoded && blankLine && MARKUP_START.test(text.slice(lineStart, lineStart + 16)))
    return SCORE.splitBody;
  return 0;
}
