/**
 * The path of a request URL without its query string (which may carry tokens), cut to `max`
 * characters with a trailing '…': paths of unmatched routes are attacker-chosen and unbounded.
 */
export function urlPath(url: string, max: number): string {
  const end = url.indexOf('?');
  const path = end === -1 ? url : url.slice(0, end);
  return path.length > max ? `${path.slice(0, max)}…` : path;
}
