import { randomBytes } from 'node:crypto';

/**
 * A new record id: 12 hex digits of the creation time in milliseconds, then 16 random hex digits
 * (64 bits). Ids sort by creation time in any collation (they are all [0-9a-f] of one length),
 * so lists page by id, and they reveal nothing that the record's `created_at` does not.
 */
export function newId(now: number = Date.now()): string {
  return now.toString(16).padStart(12, '0') + randomBytes(8).toString('hex');
}

/** True for a string shaped like an id from {@link newId}. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** The JSON Schema pattern of an id. */
export const ID_PATTERN_SOURCE = '^[0-9a-f]{28}$';
const ID_PATTERN = new RegExp(ID_PATTERN_SOURCE);
