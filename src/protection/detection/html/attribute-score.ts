import { OBFUSCATED_NOTATION, parsedIpv4Notation, parseIpv4 } from '../ssrf/ip-address.ts';
import { DATA_BINDING, SCRIPT_NAMESPACE } from './element-tables.ts';
import type { HtmlTagReader } from './html-tag-reader.ts';
import { cssScriptScore, scriptUrlScore } from './script-signals.ts';

const HANDLER_SCORE = 85;
const SCRIPT_ATTRIBUTE_SCORE = 85;
const SRCDOC_SCORE = 80;
const DATA_BINDING_SCORE = 60;
const NAMESPACE_SCORE = 60;
const EVENT_HANDLER = /^on[a-z]{3,}/;

/** Attribute names that matter whatever their value. */
const SPECIAL_ATTRIBUTES = new Set(['style', 'srcdoc', 'content', ...DATA_BINDING]);
/** Lengths of `style` … `dataformatas`, and of `xmlns` and longer `xmlns:…` (up to a point). */
const MIN_SPECIAL_LENGTH = 5;
const MAX_SPECIAL_LENGTH = 40;
/** `on` + three letters: the shortest event handler name (`oncut`). */
const MIN_HANDLER_LENGTH = 5;

/** Score of attribute `index` of the tag `reader` is on (`element` is its local name). */
export function attributeScore(reader: HtmlTagReader, text: string, index: number, element: string): number {
  const nameStart = reader.attributeNameStart[index]!;
  const nameLength = reader.attributeNameEnd[index]! - nameStart;
  const handlerLike = nameLength >= MIN_HANDLER_LENGTH && (text.charCodeAt(nameStart) | 0x20) === 111 /* o */;
  const valueHasColon = valueIncludesColon(reader, text, index);
  // Most attributes (`id`, `class`, `href="/a"`) are none of these: decided without slicing.
  if (!handlerLike && !valueHasColon && (nameLength < MIN_SPECIAL_LENGTH || nameLength > MAX_SPECIAL_LENGTH))
    return 0;
  const name = reader.attributeName(index);
  if (handlerLike && EVENT_HANDLER.test(name)) return HANDLER_SCORE;
  if (!valueHasColon && !SPECIAL_ATTRIBUTES.has(name) && !name.startsWith('xmlns')) return 0;
  if (DATA_BINDING.has(name)) return DATA_BINDING_SCORE;
  const value = reader.attributeValue(index);
  if (value === '') return 0;
  const lower = value.toLowerCase();
  if (name === 'srcdoc' && value.includes('<')) return SRCDOC_SCORE;
  if (name.startsWith('xmlns') && SCRIPT_NAMESPACE.test(lower)) return NAMESPACE_SCORE;
  if (name === 'style') {
    const css = decodeCssEscapes(lower);
    if (cssScriptScore(css) > 0 || scriptUrlScore(css, css) >= 50) return SCRIPT_ATTRIBUTE_SCORE;
    if (SVG_IN_CSS.test(css)) return SVG_IN_CSS_SCORE;
    // A style attribute holds declarations only: braces or comments break out into rules.
    if (/[{}]|\/\*/.test(css)) return CSS_BREAKOUT_SCORE;
  }
  if (valueHasColon) {
    if (scriptUrlScore(lower, value) >= 50) return SCRIPT_ATTRIBUTE_SCORE;
    if (element === 'meta' && name === 'content' && lower.includes('url=')) return SCRIPT_ATTRIBUTE_SCORE;
    if (URL_ATTRIBUTES.has(name) && hasObfuscatedIpHost(lower)) return OBFUSCATED_HOST_SCORE;
  }
  return 0;
}

function valueIncludesColon(reader: HtmlTagReader, text: string, index: number): boolean {
  const start = reader.valueStart[index]!;
  if (start < 0) return false;
  const end = reader.valueEnd[index]!;
  for (let i = start; i < end; i += 1) if (text.charCodeAt(i) === 58) return true;
  return false;
}

const CSS_BREAKOUT_SCORE = 55;
const OBFUSCATED_HOST_SCORE = 55;
const URL_ATTRIBUTES = new Set([
  'href',
  'src',
  'action',
  'formaction',
  'data',
  'background',
  'poster',
  'codebase',
]);
const URL_HOST = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/;

/**
 * A link to `http://1113982867/` or `http://0x42.0x66.0x7.0x93/`: an address written in an
 * integer, octal or hex notation that only filter evasion uses.
 */
function hasObfuscatedIpHost(lower: string): boolean {
  const host = URL_HOST.exec(lower.replace(/\s+/g, ''));
  if (host === null) return false;
  const name = host[1]!.slice(host[1]!.lastIndexOf('@') + 1).replace(/:\d*$/, '');
  return parseIpv4(name) >= 0 && parsedIpv4Notation === OBFUSCATED_NOTATION;
}

/** `url(x.svg)` in a style: an SVG document, which may run script, loaded by CSS. */
const SVG_IN_CSS = /url\(\s*['"]?[^)'"]*\.svg\b/;
const SVG_IN_CSS_SCORE = 55;

const CSS_ESCAPE = /\\([0-9a-f]{1,6})\s?/g;

/** CSS escapes (`\0075` is `u`) hide `url(javascript:…)` and `expression(` in style values. */
function decodeCssEscapes(css: string): string {
  if (!css.includes('\\')) return css;
  return css.replace(CSS_ESCAPE, (_, hex: string) => {
    const code = Number.parseInt(hex, 16);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '';
  });
}
