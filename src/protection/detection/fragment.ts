/** Longest fragment reported, before masking. */
const MAX_FRAGMENT = 60;
const MASK = '***';
const HEAD_SHARE = 0.4;
const TAIL_SHARE = 0.2;
const MAX_HEAD = 24;
const MAX_TAIL = 12;

function isControl(code: number): boolean {
  return code < 32 || code === 127 || code === 0x2028 || code === 0x2029;
}

/** Control characters would let a fragment forge log lines: they are shown escaped. */
function escapeControls(text: string): string {
  let shown = '';
  for (const char of text) {
    const code = char.charCodeAt(0);
    if (!isControl(code)) shown += char;
    else if (code === 10) shown += '\\n';
    else if (code === 13) shown += '\\r';
    else if (code === 9) shown += '\\t';
    else shown += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return shown;
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
  return escapeControls(shown);
}
