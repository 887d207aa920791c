import { AMP, BACKSLASH, charFlags, NON_ASCII, PERCENT, PLUS } from './char-flags.ts';
import { type Normalised, normalise } from './normalise/normalise.ts';
import type { AttackClass } from './types.ts';

/** Characters without which a value has nothing to decode (percent, entity, escape, UTF-7, Unicode). */
const ENCODING_HINTS = PERCENT | AMP | BACKSLASH | PLUS | NON_ASCII;

/** Where a value comes from (bits of `Subject.where` and of `ClassDetector.scope`). */
export const IN_PATH = 1 << 0;
export const IN_QUERY = 1 << 1;
export const IN_HEADER = 1 << 2;
export const IN_USER_AGENT = 1 << 3;
export const IN_COOKIE = 1 << 4;
export const IN_BODY = 1 << 5;
/** The value is a key (query parameter name, JSON property name), not a value. */
export const IS_KEY = 1 << 6;

export const ANY_PLACE = IN_PATH | IN_QUERY | IN_HEADER | IN_USER_AGENT | IN_COOKIE | IN_BODY;

/**
 * One value under inspection, decoded once and shared by every detector. A single instance is
 * reused for every value of every request, so the hot path allocates nothing for it.
 */
export class Subject {
  raw = '';
  rawFlags = 0;
  /** The value after `normalise` (decoded, NFKC); what detectors read. */
  text = '';
  /** Character flags of `text`. */
  flags = 0;
  /** Encoding layers that were removed (bits of `normalise`'s `*_LAYER`). */
  layers = 0;
  where = 0;
  /** For keys: the key above this one (`constructor` for `prototype`); '' otherwise. */
  parentKey = '';
  /** Span of `text` that a detector blamed (for the fragment). */
  hitStart = 0;
  hitEnd = 0;
  private lowerText: string | undefined;
  private readonly normalised: Normalised = { text: '', flags: 0, layers: 0 };

  load(raw: string, where: number, parentKey = ''): void {
    this.raw = raw;
    this.rawFlags = charFlags(raw);
    this.where = where;
    this.parentKey = parentKey;
    this.lowerText = undefined;
    if (this.rawFlags & ENCODING_HINTS) {
      normalise(raw, this.rawFlags, this.normalised);
      this.text = this.normalised.text;
      this.flags = this.normalised.flags;
      this.layers = this.normalised.layers;
    } else {
      this.text = raw;
      this.flags = this.rawFlags;
      this.layers = 0;
    }
    this.hitStart = 0;
    this.hitEnd = this.text.length;
  }

  /** `text` in lower case, computed on first use. */
  get lower(): string {
    this.lowerText ??= this.text.toLowerCase();
    return this.lowerText;
  }

  /** Records the offending span of `text`. */
  mark(start: number, end: number): void {
    this.hitStart = Math.max(0, start);
    this.hitEnd = Math.min(this.text.length, Math.max(end, start));
  }
}

/** One attack class's detector. */
export interface ClassDetector {
  readonly attackClass: AttackClass;
  /** Where it looks: bits of `IN_*`, plus `IS_KEY` when keys matter to it. */
  readonly scope: number;
  /**
   * Whether a value of letters and digits only (no space, no punctuation) may carry the attack:
   * `whoami`, `0x2e0x2e0x2fetc0x2fpasswd`, the key `prototype`. Absent: such values are not
   * looked at, which is most of the values of a request.
   */
  inspectsPlainWord?(word: string): boolean;
  /** Confidence 0..100 that `subject` carries the attack; marks the offending span on it. */
  score(subject: Subject): number;
}
