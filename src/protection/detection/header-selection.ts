/**
 * Which request headers carry user data worth inspecting. Credentials (authorization, API keys,
 * CSRF tokens) are never inspected, so no fragment of them can reach a finding or a log; the
 * headers Bastion itself sets or interprets (request id, forwarding chain, trace context) are
 * skipped because their format is checked where they are used.
 */
const INSPECTED = new Set(['user-agent', 'referer', 'x-forwarded-host']);

const NOT_INSPECTED_X_HEADERS = new Set([
  'x-request-id',
  'x-correlation-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'x-api-key',
  'x-auth-token',
  'x-csrf-token',
  'x-xsrf-token',
  'x-amzn-trace-id',
  'x-cloud-trace-context',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
]);

/** True when the (lower-case) header `name` carries user data to inspect; `cookie` is handled apart. */
export function isInspectedHeader(name: string): boolean {
  if (INSPECTED.has(name)) return true;
  return name.startsWith('x-') && !NOT_INSPECTED_X_HEADERS.has(name) && !name.startsWith('x-bastion-');
}
