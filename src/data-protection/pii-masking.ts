import {
  ESCAPED_STRING,
  isSecretKey,
  JSON_STRING,
  REDACTED,
  redactValues,
  SUSPECT,
} from '../observability/redaction.ts';

/** What the hidden part of a masked value is shown as. */
export const MASK = '***';

/** Options of `createPiiMasker` and `maskObject`. */
export interface PiiMaskingOptions {
  /** Field names (any case) whose string or number values are masked wherever they appear; default none. */
  fields?: readonly string[];
  /** Mask e-mail addresses (`j***@example.com`); default true. */
  emails?: boolean;
}

// E-mail addresses, in plain text and in serialized JSON. The local part starts at a word
// boundary, and a JSON escape before it (the `n` of `\n`) is not part of it; the domain ends with
// a real top-level domain (letters, or punycode).
const LOCAL_CHAR = String.raw`[\p{L}\p{N}._%+-]`;
const DOMAIN_LABEL = String.raw`[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?`;
const EMAIL_PATTERN = new RegExp(
  String.raw`(?<!\\)(?<!(?<!\\)${LOCAL_CHAR})${LOCAL_CHAR}{1,64}@(?:${DOMAIN_LABEL}\.)+(?:\p{L}{2,63}|xn--[a-z0-9-]{2,59})(?![\p{L}\p{N}-])`,
  'gu',
);

// Runs of digit groups (3 or more digits each, one space or dash between groups) or of 13 or
// more digits; the card numbers are looked for inside each run by `maskCardRun`. Starting with a
// plain `[0-9]{3}` (no lookaround) keeps the scan of a line of short numbers cheap.
const CARD_RUN_PATTERN = /[0-9]{3}(?:[0-9]*(?:[ -][0-9]{3,})+|[0-9]{10,})/g;
const CARD_MIN_DIGITS = 13;
const CARD_MAX_DIGITS = 19;
// A number glued to a word (`ab4111…`, `…1111x`) or after a decimal point is no card number.
const GLUED_BEFORE = /[A-Za-z_.]/;
const GLUED_AFTER = /[A-Za-z_]/;

const NUMBER = /-?[0-9][0-9.eE+-]*/.source;

/** Masks one e-mail address, keeping the first character and the domain: `jane.doe@example.com` → `j***@example.com`. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return MASK;
  return `${String.fromCodePoint(email.codePointAt(0) ?? 0x2a)}${MASK}${email.slice(at)}`;
}

/** Masks every e-mail address in a text (see `maskEmail`). */
export function maskEmails(text: string): string {
  if (!text.includes('@')) return text;
  return text.replace(EMAIL_PATTERN, maskEmail);
}

/** True when a string of digits passes the Luhn check, as every payment card number does. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i -= 1) {
    let digit = digits.charCodeAt(i) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Masks the card numbers in one run of digit groups: from each group, the longest span of
 * consecutive groups holding 13–19 digits that passes the Luhn check (every group but the last
 * of at least 4 digits) becomes `**** **** **** 1234`. Glued groups at either end are skipped.
 */
function maskCardRun(run: string, offset: number, text: string): string {
  if (run.length < CARD_MIN_DIGITS) return run;
  // One in ten numbers passes Luhn by chance: a bare JSON number (`"time":1795333514877`, an id)
  // or an epoch-milliseconds timestamp anywhere is not taken for a card.
  if (/^[0-9]+$/.test(run) && (text[offset - 1] === ':' || isEpochMillis(run))) return run;
  const parts = run.split(/([ -])/);
  const before = text[offset - 1];
  const gluedBefore = before !== undefined && GLUED_BEFORE.test(before) && text[offset - 2] !== '\\';
  const after = text[offset + run.length];
  const last = parts.length - 1 - (after !== undefined && GLUED_AFTER.test(after) ? 2 : 0);
  let out = gluedBefore ? `${parts[0]}${parts[1] ?? ''}` : '';
  let i = gluedBefore ? 2 : 0;
  while (i < parts.length) {
    let digits = '';
    let card = '';
    let end = -1;
    for (let j = i; j <= last; j += 2) {
      const group = parts[j] ?? '';
      digits += group;
      if (digits.length > CARD_MAX_DIGITS) break;
      if (digits.length >= CARD_MIN_DIGITS && luhnValid(digits)) {
        card = digits;
        end = j;
      }
      if (group.length < 4) break;
    }
    if (end === -1) {
      out += `${parts[i]}${parts[i + 1] ?? ''}`;
      i += 2;
    } else {
      out += `**** **** **** ${card.slice(-4)}${parts[end + 1] ?? ''}`;
      i = end + 2;
    }
  }
  return out;
}

// Epoch milliseconds from 2001 to 2096: 13 digits that no issuer's 13-digit cards (Visa, 4…) share.
function isEpochMillis(digits: string): boolean {
  return digits.length === 13 && digits[0] !== '4';
}

/**
 * Masks card numbers in a text — 13–19 digits in groups of 4 (the last may have 3) separated by
 * single spaces or dashes, or unseparated, passing the Luhn check — to `**** **** **** 1234`.
 * Bare JSON numbers and 13-digit epoch-millisecond timestamps are left alone; other long numbers
 * pass the check only by chance (one in ten) and are then masked too.
 */
export function maskCardNumbers(text: string): string {
  // Not `replace`: a line whose only long digit run is its timestamp (every log line) is returned
  // as it is instead of being copied.
  CARD_RUN_PATTERN.lastIndex = 0;
  let out: string | null = null;
  let copied = 0;
  for (let match = CARD_RUN_PATTERN.exec(text); match !== null; match = CARD_RUN_PATTERN.exec(text)) {
    const run = match[0];
    const masked = maskCardRun(run, match.index, text);
    if (masked === run) continue;
    out = (out ?? '') + text.slice(copied, match.index) + masked;
    copied = match.index + run.length;
  }
  return out === null ? text : out + text.slice(copied);
}

/** Masks a configured field's value, keeping its last two characters when it has at least 8 (`+44 7700 900123` → `***23`). */
export function maskValue(value: string): string {
  const chars = Array.from(value);
  return chars.length >= 8 ? `${MASK}${chars.slice(-2).join('')}` : MASK;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A configured field's serialized value (JSON string or number), masked and serialized again. */
function maskSerialized(raw: string): string {
  if (!raw.startsWith('"')) return JSON.stringify(maskValue(raw));
  try {
    return JSON.stringify(maskValue(JSON.parse(raw) as string));
  } catch {
    return `"${MASK}"`;
  }
}

/** The same inside JSON that was logged as a string, where the value is serialized twice. */
function maskDoublySerialized(raw: string): string {
  if (!raw.startsWith('\\"')) return String.raw`\"${maskValue(raw)}\"`;
  try {
    const once = JSON.parse(`"${raw}"`) as string;
    return JSON.stringify(JSON.stringify(maskValue(JSON.parse(once) as string))).slice(1, -1);
  } catch {
    return String.raw`\"${MASK}\"`;
  }
}

function fieldNames(options: PiiMaskingOptions): string[] {
  return [...new Set((options.fields ?? []).map((field) => field.trim()).filter((field) => field !== ''))];
}

/**
 * Builds the one function that cleans a serialized JSON log line, or any text: secrets are
 * redacted whole (`redactValues`), then configured fields (default none), e-mail addresses
 * (default on) and card numbers are masked, keeping a hint. Every step but the card scan is
 * skipped after one cheap test, so a line with nothing to clean (an access line) costs four scans
 * and is returned as it is.
 */
export function createPiiMasker(options: PiiMaskingOptions = {}): (line: string) => string {
  const emails = options.emails ?? true;
  const names = fieldNames(options).map(escapeRegExp).join('|');
  // `"phone":<value>` in the line itself, and `\"phone\":<value>` in JSON logged inside a string.
  const fieldPattern =
    names === ''
      ? null
      : new RegExp(
          String.raw`("(?:${names})":\s*)(${JSON_STRING}|${NUMBER})|(\\"(?:${names})\\":\s*)(${ESCAPED_STRING}|${NUMBER})`,
          'gi',
        );
  const fieldHint = names === '' ? null : new RegExp(names, 'i');
  const maskField = (_match: string, key?: string, value?: string, escapedKey?: string, escaped?: string) =>
    key !== undefined
      ? `${key}${maskSerialized(value ?? '')}`
      : `${escapedKey}${maskDoublySerialized(escaped ?? '')}`;

  return (line: string): string => {
    let out = SUSPECT.test(line) ? redactValues(line) : line;
    if (fieldPattern !== null && fieldHint?.test(out)) out = out.replace(fieldPattern, maskField);
    if (emails && out.includes('@')) out = out.replace(EMAIL_PATTERN, maskEmail);
    return maskCardNumbers(out);
  };
}

// `maskObject` is called per audit event or error report: its maskers are built once per
// distinct option set.
const maskers = new Map<string, (line: string) => string>();
const MASKER_CACHE_SIZE = 32;

function maskerFor(options: PiiMaskingOptions): (line: string) => string {
  const id = `${options.emails ?? true}|${fieldNames(options).join('|')}`;
  let masker = maskers.get(id);
  if (masker === undefined) {
    if (maskers.size >= MASKER_CACHE_SIZE) maskers.clear();
    masker = createPiiMasker(options);
    maskers.set(id, masker);
  }
  return masker;
}

const CIRCULAR = '[Circular]';

/**
 * A masked deep copy of structured data (audit events, error reports), shaped as JSON would see
 * it: each string is cleaned like a log line (`createPiiMasker`), secret-named fields become
 * `[REDACTED]`, configured fields' strings and numbers are masked, an error becomes
 * `{ name, message, stack, … }` and a cycle `[Circular]`. The input is left unchanged. Options as
 * `createPiiMasker` (default: no fields, e-mails masked).
 */
export function maskObject(value: unknown, options: PiiMaskingOptions = {}): unknown {
  const clean = maskerFor(options);
  const fields = new Set(fieldNames(options).map((field) => field.toLowerCase()));
  // Objects on the path from the root: meeting one again is a cycle; a shared one is copied twice.
  const path = new Set<object>();

  const copy = (input: unknown): unknown => {
    if (typeof input === 'string') return clean(input);
    if (typeof input !== 'object' || input === null) return input;
    if (path.has(input)) return CIRCULAR;
    path.add(input);
    try {
      if (Array.isArray(input)) return input.map(copy);
      if (input instanceof Error) {
        const { name, message, stack } = input;
        // Own enumerable properties (a code, a status) follow; name, message and stack are not enumerable.
        const record: Record<string, unknown> = { name, message, stack };
        Object.assign(record, input);
        if (input.cause !== undefined) record.cause = input.cause;
        return copyRecord(record);
      }
      const toJSON = (input as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return copy(toJSON.call(input));
      return copyRecord(input as Record<string, unknown>);
    } finally {
      path.delete(input);
    }
  };

  const copyRecord = (record: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(record)) {
      const name = key.toLowerCase();
      if (isSecretKey(key)) out[key] = REDACTED;
      else if (fields.has(name) && (typeof item === 'string' || typeof item === 'number')) {
        out[key] = maskValue(String(item));
      } else out[key] = copy(item);
    }
    return out;
  };

  return copy(value);
}
