import { BastionError, HttpErrors } from '../../core/errors.ts';

/** Largest serialized workflow definition, bytes of UTF-8. */
export const MAX_DEFINITION_BYTES = 256 * 1024;
/** Deepest nesting of objects and arrays in a definition. */
export const MAX_DEFINITION_DEPTH = 64;

/** True when `value` nests objects or arrays deeper than `limit` (checked without recursion). */
function deeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The stored text of a definition: 400 when it nests deeper than {@link MAX_DEFINITION_DEPTH}
 * (serializing it would exhaust the stack), 413 when it is larger than {@link MAX_DEFINITION_BYTES}.
 */
export function serializeDefinition(definition: Record<string, unknown>): string {
  if (deeperThan(definition, MAX_DEFINITION_DEPTH)) {
    throw new BastionError(HttpErrors.validation, {
      message: `definition nests deeper than ${MAX_DEFINITION_DEPTH} levels`,
    });
  }
  const text = JSON.stringify(definition);
  if (Buffer.byteLength(text, 'utf8') > MAX_DEFINITION_BYTES) {
    throw new BastionError(HttpErrors.payloadTooLarge, {
      message: `definition is larger than ${MAX_DEFINITION_BYTES / 1024} KiB`,
    });
  }
  return text;
}
