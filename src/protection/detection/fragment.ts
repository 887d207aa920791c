/** Longest fragment reported, before masking. */
const MAX_FRAGMENT = 60;
const MASK = '***';
const HEAD_SHARE = 0.4;
const TAIL_SHARE = 0.2;
const MAX_HEAD = 24;
const MAX_TAIL = 12;

// Control characters would let a fragment forge log lines; they are shown escaped.
const CONTROL = /[\u0000-\u001f\u007f\u2028\u2029]/g;

function escapeControl(char: string): string {
  const code = char.charCodeAt(0);
  if (code === 10) return '\\n';
  if (code === 13) return '\\r';
  if (code === 9) return '\\t';
  return `\\x${code.toString(16).padStart(2, '0')}`;
}

/**
 * The offending part of a value for a finding: at most 60 characters of `text[start, end)`,
 * control characters escaped, and its middle replaced by `***` so that a log of findings shows
 * what was blamed without replaying the payload (or a secret that happened to be there).
 */
export function maskFragment(text: string, start: number, end: number): string {
  const from = Math.max(0, Math.min(start, text.length));
  const to = Math.min(text.length, from + MAX_FRAGMENT, Math.max(end, from));
  const piece = text.slice(from, to);
  const chars = Array.from(piece);
  if (chars.length === 0) return MASK;
  const head = Math.max(1, Math.min(MAX_HEAD, Math.ceil(chars.length * HEAD_SHARE)));
  const tail = Math.min(MAX_TAIL, Math.floor(chars.length * TAIL_SHARE));
  const shown =
    chars.slice(0, head).join('') + MASK + (tail > 0 ? chars.slice(chars.length - tail).join('') : '');
  return shown.replace(CONTROL, escapeControl);
}
