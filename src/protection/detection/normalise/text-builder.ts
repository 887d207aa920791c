const CHUNK = 1024;
/** Slices up to this length are copied unit by unit rather than kept as parts. */
const SHORT_SLICE = 64;

// One buffer for every builder: decoding is synchronous and builders are never used nested.
const UNITS = new Uint16Array(CHUNK);

/**
 * Builds a decoded string from slices of the input and single code units, without one string
 * concatenation per character: units are buffered and turned into a string a chunk at a time.
 * Only one builder may be in use at a time (they share their unit buffer).
 */
export class TextBuilder {
  private readonly parts: string[] = [];
  private readonly units = UNITS;
  private count = 0;

  /** Appends `text.slice(start, end)`; short slices are copied into the unit buffer (fewer, larger parts). */
  pushSlice(text: string, start: number, end: number): void {
    if (end <= start) return;
    if (end - start <= SHORT_SLICE) {
      for (let i = start; i < end; i += 1) this.pushUnit(text.charCodeAt(i));
      return;
    }
    this.flushUnits();
    this.parts.push(text.slice(start, end));
  }

  /** Appends one code point (two units for astral ones). */
  pushCodePoint(codePoint: number): void {
    if (codePoint > 0xffff) {
      const offset = codePoint - 0x10000;
      this.pushUnit(0xd800 + (offset >> 10));
      this.pushUnit(0xdc00 + (offset & 0x3ff));
    } else {
      this.pushUnit(codePoint);
    }
  }

  pushUnit(unit: number): void {
    if (this.count === CHUNK) this.flushUnits();
    this.units[this.count] = unit;
    this.count += 1;
  }

  finish(): string {
    this.flushUnits();
    return this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
  }

  private flushUnits(): void {
    if (this.count === 0) return;
    // `apply` accepts a typed array at run time; the cast only satisfies the DOM-less typings.
    this.parts.push(
      String.fromCharCode.apply(null, this.units.subarray(0, this.count) as unknown as number[]),
    );
    this.count = 0;
  }
}

/** True for a code point that can be emitted (not a lone surrogate, not past U+10FFFF). */
export function isEmittable(codePoint: number): boolean {
  return codePoint >= 0 && codePoint <= 0x10ffff && (codePoint < 0xd800 || codePoint > 0xdfff);
}
