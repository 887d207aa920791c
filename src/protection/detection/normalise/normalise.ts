import { AMP, BACKSLASH, charFlags, NON_ASCII, PERCENT, PLUS } from '../char-flags.ts';
import { decodeEscapes } from './escape-sequences.ts';
import { decodeHtmlEntities } from './html-entities.ts';
import { percentDecode } from './percent-decode.ts';
import { decodeUtf7 } from './utf7.ts';

/** Which layers of encoding a value had (bits of `Normalised.layers`). */
export const PERCENT_LAYER = 1 << 0;
export const ENTITY_LAYER = 1 << 1;
export const ESCAPE_LAYER = 1 << 2;
export const UNICODE_LAYER = 1 << 3;
export const UTF7_LAYER = 1 << 4;
/** More than one round of decoding changed the value (double encoding). */
export const NESTED_LAYERS = 1 << 5;

/** Rounds of decoding: attackers stack two or three layers; more is left as it is. */
const MAX_ROUNDS = 3;

// Zero-width and format characters that browsers and databases ignore inside words.
const INVISIBLE = /[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]/g;
const HAS_INVISIBLE = /[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]/;

/** The result of `normalise`: the decoded text and what it took to get there. */
export interface Normalised {
  text: string;
  /** Character flags of `text`. */
  flags: number;
  /** Bits of the layers that changed something. */
  layers: number;
}

/**
 * Peels encodings off a value so detectors see what the application will eventually see:
 * percent-encoding, HTML character references, JSON/JS escapes and UTF-7, each up to three
 * rounds, then Unicode NFKC (full-width `＜script＞`) and invisible characters. Every step runs
 * only when the character flags say it has something to do, so a plain value costs one scan.
 * Writes into `result`, which the caller reuses.
 */
export function normalise(raw: string, rawFlags: number, result: Normalised): void {
  let text = raw;
  let flags = rawFlags;
  let layers = 0;
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const before = text;
    let roundLayers = 0;
    if (flags & PERCENT) {
      const decoded = percentDecode(text);
      if (decoded !== text) {
        text = decoded;
        roundLayers |= PERCENT_LAYER;
      }
    }
    if (flags & AMP || roundLayers) {
      const decoded = decodeHtmlEntities(text);
      if (decoded !== text) {
        text = decoded;
        roundLayers |= ENTITY_LAYER;
      }
    }
    if (flags & BACKSLASH || roundLayers) {
      const decoded = decodeEscapes(text);
      if (decoded !== text) {
        text = decoded;
        roundLayers |= ESCAPE_LAYER;
      }
    }
    if (flags & PLUS || roundLayers) {
      const decoded = decodeUtf7(text);
      if (decoded !== text) {
        text = decoded;
        roundLayers |= UTF7_LAYER;
      }
    }
    if (text === before) break;
    if (layers !== 0) roundLayers |= NESTED_LAYERS;
    layers |= roundLayers;
    flags = charFlags(text);
  }
  if (flags & NON_ASCII) {
    let folded = text.normalize('NFKC');
    if (HAS_INVISIBLE.test(folded)) folded = folded.replace(INVISIBLE, '');
    if (folded !== text) {
      text = folded;
      layers |= UNICODE_LAYER;
      flags = charFlags(text);
      // Full-width `％２５` becomes `%25` only now: one more percent round for it.
      if (flags & PERCENT) {
        const decoded = percentDecode(text);
        if (decoded !== text) {
          text = decoded;
          flags = charFlags(text);
        }
      }
    }
  }
  result.text = text;
  result.flags = flags;
  result.layers = layers;
}
