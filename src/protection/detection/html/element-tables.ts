/** Scores of elements, declarations and namespaces, for `markupScore` and `attributeScore`. */

/**
 * Elements that run script, load documents or code, or rewrite the page (base, meta refresh),
 * scored alone; any other element (b, p, img, a, custom XML) is scored by its attributes only.
 */
export const ELEMENT_SCORES: ReadonlyMap<string, number> = new Map([
  ['script', 90],
  ['iframe', 80],
  ['frame', 75],
  ['frameset', 75],
  ['object', 80],
  ['embed', 80],
  ['applet', 80],
  ['base', 75],
  ['meta', 70],
  ['isindex', 75],
  ['import', 75],
  ['portal', 75],
  ['xss', 70],
  ['bgsound', 70],
  ['layer', 70],
  ['ilayer', 70],
  ['handler', 70],
  ['listener', 70],
  ['xml', 60],
  ['style', 60],
  ['link', 60],
  ['svg', 60],
  ['math', 55],
  ['form', 55],
  ['html', 55],
  ['head', 50],
  ['animate', 60],
  ['animatemotion', 60],
  ['animatetransform', 60],
  ['set', 60],
  ['foreignobject', 60],
  ['feimage', 55],
  ['input', 0],
  ['xmp', 55],
  ['plaintext', 55],
  ['noscript', 55],
  ['noembed', 55],
  ['noframes', 55],
  ['template', 45],
]);

/** Closing these ends the context a value was reflected in (`</script><script>…`). */
export const BREAKOUT_CLOSERS: ReadonlyMap<string, number> = new Map([
  ['script', 75],
  ['style', 55],
  ['textarea', 50],
  ['noscript', 50],
  ['xmp', 50],
  ['iframe', 50],
  ['noembed', 50],
  ['noframes', 50],
  ['html', 50],
  ['form', 50],
  ['template', 50],
]);

/** SVG-only elements: with attributes they are drawing markup, which user input does not carry. */
export const SVG_ELEMENTS = new Set([
  'rect',
  'circle',
  'ellipse',
  'polygon',
  'polyline',
  'path',
  'g',
  'defs',
  'use',
  'image',
  'mask',
  'clippath',
  'pattern',
  'marker',
  'symbol',
  'textpath',
  'lineargradient',
  'radialgradient',
  'filter',
]);

/** Processing instructions and declarations that load behaviours, style sheets or server code. */
export const DECLARATION_SCORES: readonly (readonly [RegExp, number])[] = [
  [/^<\?import\b/, 75],
  [/^<\?xml-stylesheet\b/, 65],
  [/^<\?xml:namespace\b/, 60],
  [/^<\?(?:php\b|=|\s)/, 60],
  [/^<!\[(?:if|endif)\b/, 60],
  [/^<!(?:entity|attlist|element)\b/, 55],
  [/^<!doctype[^>[]*\[/, 55],
];

/** Namespaces that bring script-capable vocabularies (XHTML, SVG, XSLT, old IE behaviours). */
export const SCRIPT_NAMESPACE =
  /w3\.org\/(?:1999\/xhtml|2000\/svg|1999\/xsl|1999\/xlink|tr\/wd-xsl)|urn:schemas-microsoft-com/;

/** IE data binding: `datasrc`/`datafld` render data as HTML. */
export const DATA_BINDING = new Set(['datasrc', 'datafld', 'dataformatas']);
