/** Kinds of markup `HtmlTagReader.next` stops at. */
export const OPEN_TAG = 1;
export const CLOSE_TAG = 2;
export const COMMENT = 3;
export const DECLARATION = 4; // <!DOCTYPE …>, <![CDATA[ …, <? … ?>

/** Attributes remembered per tag; later ones are still read past, just not kept. */
const MAX_ATTRIBUTES = 32;

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 12 || code === 13;
}

function isLetter(code: number): boolean {
  return (code | 0x20) >= 97 && (code | 0x20) <= 122;
}

function holdsMarkup(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) if (text.charCodeAt(i) === 60) return true;
  return false;
}

/**
 * Reads tags out of a value the way an HTML tokenizer would: tag names end at space, `/`, `>`;
 * `/` separates attributes (`<svg/onload=…>`); attribute values are quoted or not; a tag may be
 * left open at the end of the value, as injected tags often are. Unlike a browser, a `<` inside
 * a tag starts a new one, so `<scr<script>ipt>` shows its inner `<script>`. Each character is
 * read once: the reader never goes back.
 */
export class HtmlTagReader {
  text = '';
  kind = 0;
  tagStart = 0;
  tagEnd = 0;
  nameStart = 0;
  nameEnd = 0;
  attributeCount = 0;
  readonly attributeNameStart = new Int32Array(MAX_ATTRIBUTES);
  readonly attributeNameEnd = new Int32Array(MAX_ATTRIBUTES);
  /** -1 when the attribute has no value. */
  readonly valueStart = new Int32Array(MAX_ATTRIBUTES);
  readonly valueEnd = new Int32Array(MAX_ATTRIBUTES);
  private position = 0;
  private rescanFrom = -1;

  reset(text: string): void {
    this.text = text;
    this.position = 0;
  }

  /** Tag name in lower case. */
  name(): string {
    return this.text.slice(this.nameStart, this.nameEnd).toLowerCase();
  }

  attributeName(index: number): string {
    return this.text.slice(this.attributeNameStart[index]!, this.attributeNameEnd[index]!).toLowerCase();
  }

  attributeValue(index: number): string {
    const start = this.valueStart[index]!;
    return start < 0 ? '' : this.text.slice(start, this.valueEnd[index]!);
  }

  /** Moves to the next tag, comment or declaration; false when there is none. */
  next(): boolean {
    const text = this.text;
    for (;;) {
      const open = text.indexOf('<', this.position);
      if (open < 0) {
        this.position = text.length;
        return false;
      }
      this.tagStart = open;
      this.attributeCount = 0;
      const first = text.charCodeAt(open + 1);
      if (isLetter(first)) return this.readTag(OPEN_TAG, open + 1);
      if (first === 47 /* / */ && isLetter(text.charCodeAt(open + 2)))
        return this.readTag(CLOSE_TAG, open + 2);
      if (first === 33 /* ! */)
        return this.readDeclaration(open, text.startsWith('<!--', open) ? COMMENT : DECLARATION);
      if (first === 63 /* ? */) return this.readDeclaration(open, DECLARATION);
      this.position = open + 1;
    }
  }

  private readDeclaration(open: number, kind: number): boolean {
    const closer = kind === COMMENT ? '-->' : '>';
    const close = this.text.indexOf(closer, open + 2);
    this.kind = kind;
    this.nameStart = open + 1;
    this.nameEnd = open + 1;
    this.tagEnd = close < 0 ? this.text.length : close + closer.length;
    this.position = kind === COMMENT ? open + 4 : this.tagEnd; // markup inside a comment is still looked at
    return true;
  }

  private readTag(kind: number, nameStart: number): boolean {
    const text = this.text;
    let i = nameStart;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (isSpace(code) || code === 47 || code === 62 || code === 60 || code === 0) break;
      i += 1;
    }
    this.kind = kind;
    this.nameStart = nameStart;
    this.nameEnd = i;
    this.position = this.readAttributes(i);
    this.tagEnd = this.position;
    return true;
  }

  /**
   * Reads attributes from `start`; returns where reading resumes: after the tag, where a new `<`
   * begins, or inside the first quoted value that holds markup (`alt="\`><img onerror=…>"`
   * fooled old browsers). A value cannot hold its own closing quote, so nothing is read more
   * than twice.
   */
  private readAttributes(start: number): number {
    const text = this.text;
    let i = start;
    this.rescanFrom = -1;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (isSpace(code) || code === 47 || code === 0) {
        i += 1;
        continue;
      }
      if (code === 62) return this.resumeAt(i + 1);
      if (code === 60) return this.resumeAt(i);
      const nameStart = i;
      i += 1; // the first character may be anything, even `=`
      while (i < text.length) {
        const c = text.charCodeAt(i);
        if (isSpace(c) || c === 47 || c === 62 || c === 61 || c === 60) break;
        i += 1;
      }
      const nameEnd = i;
      while (isSpace(text.charCodeAt(i))) i += 1;
      let valueStart = -1;
      let valueEnd = -1;
      if (text.charCodeAt(i) === 61 /* = */) {
        i += 1;
        while (isSpace(text.charCodeAt(i))) i += 1;
        const quote = text.charCodeAt(i);
        if (quote === 34 || quote === 39) {
          const close = text.indexOf(quote === 34 ? '"' : "'", i + 1);
          valueStart = i + 1;
          valueEnd = close < 0 ? text.length : close;
          i = close < 0 ? text.length : close + 1;
          if (this.rescanFrom < 0 && holdsMarkup(text, valueStart, valueEnd)) this.rescanFrom = valueStart;
        } else {
          valueStart = i;
          while (i < text.length && !isSpace(text.charCodeAt(i)) && text.charCodeAt(i) !== 62) i += 1;
          valueEnd = i;
        }
      }
      this.keepAttribute(nameStart, nameEnd, valueStart, valueEnd);
    }
    return this.resumeAt(i);
  }

  private resumeAt(index: number): number {
    return this.rescanFrom >= 0 ? this.rescanFrom : index;
  }

  private keepAttribute(nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    const at = this.attributeCount;
    if (at === MAX_ATTRIBUTES) return;
    this.attributeNameStart[at] = nameStart;
    this.attributeNameEnd[at] = nameEnd;
    this.valueStart[at] = valueStart;
    this.valueEnd[at] = valueEnd;
    this.attributeCount = at + 1;
  }
}
