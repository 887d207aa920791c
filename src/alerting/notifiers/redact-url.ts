/**
 * A URL reduced to what may be shown (channel lists, logs): scheme, host and at most
 * `keepSegments` leading path segments, never the last one, and no credentials, query or
 * fragment — webhook paths and queries are often the secret. `…` marks what was cut.
 */
export function redactUrl(raw: string, keepSegments: number): string {
  const url = new URL(raw);
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  const kept = segments.slice(0, Math.max(0, Math.min(keepSegments, segments.length - 1)));
  const cut = kept.length < segments.length || url.search !== '' || url.hash !== '';
  return `${url.protocol}//${url.host}/${kept.map((segment) => `${segment}/`).join('')}${cut ? '…' : ''}`;
}
