import type { ErrorDefinition } from '../core/errors.ts';
import { ProtectionErrors } from './errors.ts';

/**
 * Why a parsed JSON body is refused — nested deeper than `maxDepth` or holding more than
 * `maxKeys` keys and items in all — or null. Walks without recursion, so a hostile body cannot
 * exhaust the stack, and stops as soon as a limit is passed.
 */
export function jsonShapeProblem(value: unknown, maxDepth: number, maxKeys: number): ErrorDefinition | null {
  if (typeof value !== 'object' || value === null) return null;
  const stack: Array<{ node: object; depth: number }> = [{ node: value, depth: 1 }];
  let keys = 0;
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: object; depth: number };
    if (depth > maxDepth) return ProtectionErrors.jsonTooDeep;
    const children = Array.isArray(node) ? node : Object.values(node);
    keys += children.length;
    if (keys > maxKeys) return ProtectionErrors.jsonTooLarge;
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push({ node: child, depth: depth + 1 });
    }
  }
  return null;
}

/** The number of parameters in a parsed query (a repeated name counts each time). */
export function parameterCount(query: unknown): number {
  if (typeof query !== 'object' || query === null) return 0;
  let count = 0;
  for (const key in query) {
    const value = (query as Record<string, unknown>)[key];
    count += Array.isArray(value) ? value.length : 1;
  }
  return count;
}

// A host name or IPv4 address, or a bracketed IPv6 address, with an optional port.
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

/** True when a Host header may be used in a redirect (no userinfo, path, spaces or other tricks). */
export function isValidHost(host: string | undefined): host is string {
  return host !== undefined && host.length <= 260 && HOST.test(host);
}
