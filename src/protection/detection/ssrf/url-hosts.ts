/** A URL found in a value: its scheme (lower case, '' for `//host`) and every host a parser could pick. */
export interface FoundUrl {
  scheme: string;
  hosts: string[];
  /** Hosts written as user info (`http://127.0.0.1:80@evil.com`), which some parsers connect to. */
  userinfoHosts: string[];
  start: number;
  end: number;
}

/** Pseudo-schemes of a value that is only an address, with or without a port. */
export const BARE = 'bare';
export const BARE_WITH_PORT = 'bare:port';

/** URLs looked at per value (the first and those nested in its query or fragment). */
const MAX_URLS = 8;
const SCHEME = /^[a-z][a-z0-9+.-]{0,15}$/;
const MAX_SCHEME = 16;

/** Schemes worth reading a host from; `mailto:`, `tel:`, `urn:` and the like are not fetched. */
export const KNOWN_SCHEMES: ReadonlySet<string> = new Set(
  (
    'http https ftp ftps sftp ws wss smb telnet ssh redis mysql postgres postgresql mongodb memcached imap ' +
    'pop3 smtp rtsp git gopher dict ldap ldaps tftp jar netdoc php expect phar file'
  ).split(' '),
);

/**
 * The URLs of a (lower-case) value: the one it starts with, if any, and those nested after a
 * `://` (`?url=http://127.0.0.1`). For each, every host that some parser would connect to:
 * the WHATWG one (authority ends at `/ \ ? #`), a naive one (ends at `/ ?` only, so
 * `http://1.1.1.1#@127.0.0.1` also yields `127.0.0.1`), and the part before an `@`.
 */
export function findUrls(lower: string): FoundUrl[] {
  const urls: FoundUrl[] = [];
  let lead = 0;
  while (lead < lower.length && isLeadingJunk(lower.charCodeAt(lead))) lead += 1;
  const leading = leadingUrl(lower, lead);
  if (leading !== undefined) urls.push(leading);
  let from = lead + 1;
  while (urls.length < MAX_URLS) {
    const separator = lower.indexOf('://', from);
    if (separator < 0) break;
    let start = separator;
    while (start > 0 && isSchemeChar(lower.charCodeAt(start - 1))) start -= 1;
    // A nested URL counts inside a URL (its query or fragment) or as a parameter value (`url=http://…`).
    const nested = leading !== undefined || (start > 0 && lower.charCodeAt(start - 1) === 61) /* = */;
    if (start > lead && nested) {
      const scheme = lower.slice(start, separator);
      if (KNOWN_SCHEMES.has(scheme)) urls.push(urlAt(lower, scheme, start, separator + 1));
    }
    from = separator + 3;
  }
  return urls;
}

/** Whitespace, quotes, `<` and `(` before a URL. */
function isLeadingJunk(code: number): boolean {
  return code <= 32 || code === 34 || code === 39 || code === 96 || code === 60 || code === 40;
}

function isSchemeChar(code: number): boolean {
  return (
    (code >= 97 && code <= 122) || (code >= 48 && code <= 57) || code === 43 || code === 45 || code === 46
  );
}

/** The URL the value starts with: `scheme:…`, `//host`, `\\host`, or a bare `host:port`. */
function leadingUrl(lower: string, start: number): FoundUrl | undefined {
  const colon = lower.indexOf(':', start);
  const scheme = colon > start && colon - start <= MAX_SCHEME ? lower.slice(start, colon) : '';
  if (scheme !== '' && SCHEME.test(scheme) && !/^\d/.test(lower.slice(colon + 1, colon + 2))) {
    return KNOWN_SCHEMES.has(scheme) ? urlAt(lower, scheme, start, colon + 1) : undefined;
  }
  if (lower.startsWith('//', start) || lower.startsWith('\\\\', start)) return urlAt(lower, '', start, start);
  // A bare address: `host:port`, a dotted quad, `[::1]:80`; not `12:45` or `0.000001`.
  const bare = /^(?:\[[0-9a-f:.]+\]|[a-z0-9.-]*[a-z][a-z0-9.-]*|\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?$/.exec(
    lower.slice(start, start + 300).trimEnd(),
  );
  if (bare === null || !/[.:]/.test(bare[0])) return undefined;
  return {
    scheme: /:\d+$/.test(bare[0]) ? BARE_WITH_PORT : BARE,
    hosts: [stripPort(bare[0])],
    userinfoHosts: [],
    start,
    end: start + bare[0].length,
  };
}

function isAuthorityEnd(code: number, naive: boolean): boolean {
  // `/` and `?` end the authority for every parser; `\` and `#` only for the WHATWG one.
  return code === 47 || code === 63 || (!naive && (code === 92 || code === 35));
}

function urlAt(lower: string, scheme: string, start: number, afterColon: number): FoundUrl {
  let i = afterColon;
  while (lower.charCodeAt(i) === 47 || lower.charCodeAt(i) === 92) i += 1;
  const authorityStart = i;
  let whatwgEnd = -1;
  let naiveEnd = -1;
  for (; i < lower.length && i - authorityStart < 512; i += 1) {
    const code = lower.charCodeAt(i);
    if (code <= 32 || code === 34 || code === 39 || code === 60 || code === 62) break;
    if (whatwgEnd < 0 && isAuthorityEnd(code, false)) whatwgEnd = i;
    if (isAuthorityEnd(code, true)) {
      naiveEnd = i;
      break;
    }
  }
  if (naiveEnd < 0) naiveEnd = i;
  if (whatwgEnd < 0) whatwgEnd = naiveEnd;
  const whatwg = lower.slice(authorityStart, whatwgEnd);
  const hosts = [hostOf(whatwg)];
  const userinfoHosts: string[] = [];
  addUserinfo(whatwg, userinfoHosts);
  if (naiveEnd !== whatwgEnd) {
    const naive = lower.slice(authorityStart, naiveEnd);
    const host = hostOf(naive);
    if (!hosts.includes(host)) hosts.push(host);
    addUserinfo(naive, userinfoHosts);
  }
  return { scheme, hosts: hosts.filter((host) => host !== ''), userinfoHosts, start, end: naiveEnd };
}

/** The host of an authority: after its last `@`, port removed. */
function hostOf(authority: string): string {
  return stripPort(authority.slice(authority.lastIndexOf('@') + 1));
}

/** The part before the first `@`, as a host (`127.0.0.1:80@evil.com`). */
function addUserinfo(authority: string, hosts: string[]): void {
  const at = authority.indexOf('@');
  if (at <= 0) return;
  const host = stripPort(authority.slice(0, at).split(/[\\#]/)[0]!);
  if (host !== '' && !hosts.includes(host)) hosts.push(host);
}

/** `[::1]:80` → `::1`; `127.0.0.1:22` → `127.0.0.1`; `user:pass` → `user`; trailing dot removed. */
function stripPort(hostPort: string): string {
  let host = hostPort;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    host = close < 0 ? host.slice(1) : host.slice(1, close);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
