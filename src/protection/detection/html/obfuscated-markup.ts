import { markupScore, markupSpan } from './markup-score.ts';

/**
 * Markup hidden from a plain look: encoded angle brackets, a tag left open, the eighth bit set,
 * base64. Each returns a score and leaves the blamed span in `markupSpan`.
 */
const UNTERMINATED_TAG_SCORE = 55;
const ENCODED_MARKUP_SCORE = 50;
const ENCODED_TAG_SCORE = 60;
const TAG_START = /^<[a-z!/?]/i;

/**
 * Markup that only appears once the value is decoded (`%3Cimg`, `&#x3c;`, `\u003c`,
 * `+ADw-`): user input has no reason to encode an angle bracket, filters evaded do.
 */
export function encodedMarkupScore(raw: string, text: string): number {
  if (raw.includes('<')) return 0;
  const open = text.indexOf('<');
  markupSpan.start = open;
  markupSpan.end = open + 20;
  return TAG_START.test(text.slice(open, open + 2)) ? ENCODED_TAG_SCORE : ENCODED_MARKUP_SCORE;
}

/** The whole value is the start of a tag left open (`<img`, `<body onload`), as injected. */
export function unterminatedTagScore(text: string): number {
  const trimmed = text.trim();
  if (!/^<[a-z][a-z0-9]+(?:[\s/][^<>]*)?$/i.test(trimmed.slice(0, 200)) || trimmed.includes('>')) return 0;
  markupSpan.start = 0;
  markupSpan.end = text.length;
  return UNTERMINATED_TAG_SCORE;
}

/** `¼script¾` is `<script>` to a decoder that drops the eighth bit (US-ASCII in old IE). */
export function sevenBitMarkupScore(raw: string): number {
  if (!raw.includes('\u00bc')) return 0;
  const stripped = raw.replace(/[\u00a0-\u00ff]/g, (char) => String.fromCharCode(char.charCodeAt(0) - 0x80));
  return markupScore(stripped);
}

/** Shortest base64 looked at for markup. */
export const MIN_BASE64_MARKUP = 16;
const MAX_BASE64_DECODED = 400;

/** A value that is base64 for markup (`PHN2ZyB4bWxucz0i…` is `<svg xmlns="…`), to be decoded by the page. */
export function base64MarkupScore(text: string): number {
  if (text.charCodeAt(0) !== 80 /* P */ || !/^[A-Za-z0-9+/]{16}/.test(text)) return 0;
  const end = Math.min(text.length, MAX_BASE64_DECODED);
  let length = 0;
  while (length < end && /[A-Za-z0-9+/]/.test(text[length]!)) length += 1;
  if (length < MIN_BASE64_MARKUP) return 0;
  const decoded = Buffer.from(text.slice(0, length - (length % 4)), 'base64').toString('latin1');
  return markupScore(decoded);
}
