import { BACKSLASH, COLON, SLASH } from '../char-flags.ts';
import { ANY_PLACE, type ClassDetector, IN_PATH, IN_USER_AGENT, type Subject } from '../subject.ts';
import { classifyIpv4, classifyIpv6, METADATA_ADDRESS, PUBLIC } from './internal-addresses.ts';
import { INTERNAL_NAME, IP_IN_NAME, METADATA_NAME, nameKind, SSRF_TOOL } from './internal-names.ts';
import { OBFUSCATED_NOTATION, parsedIpv4Notation, parseIpv4, parseIpv4Wrapped } from './ip-address.ts';
import { BARE, BARE_WITH_PORT, type FoundUrl, findUrls } from './url-hosts.ts';

const SCORE = {
  metadata: 90,
  obfuscatedInternal: 90,
  internal: 85,
  ipInName: 85,
  internalName: 80,
  dangerousScheme: 80,
  fileScheme: 80,
  ssrfTool: 70,
  singleLabel: 65,
  templatedHost: 60,
  bareInternalWithPort: 60,
  bareObfuscatedInternal: 70,
  bareInternal: 45,
  prosePenalty: 40,
} as const;

/** Schemes that exist in SSRF payloads only: raw TCP (gopher, dict), directory and file transfer. */
const DANGEROUS_SCHEMES = new Set([
  'gopher',
  'dict',
  'ldap',
  'ldaps',
  'tftp',
  'jar',
  'netdoc',
  'php',
  'expect',
  'phar',
]);
/** Schemes a server fetches; with an internal host they are SSRF. */
const FETCHED_SCHEMES = new Set([
  'http',
  'https',
  'ftp',
  'ftps',
  'sftp',
  'ws',
  'wss',
  'smb',
  'telnet',
  'ssh',
  'redis',
  'mysql',
  'postgres',
  'postgresql',
  'mongodb',
  'memcached',
  'imap',
  'pop3',
  'smtp',
  'rtsp',
  'git',
  '',
  BARE,
  BARE_WITH_PORT,
]);

/**
 * Server-side request forgery: URLs (and `//host`, bare `host:port`) whose host is this machine,
 * a private or link-local network, or cloud metadata, in any notation (`2130706433`, `0177.1`,
 * `0x7f000001`, `[::ffff:127.0.0.1]`, `127.0.0.1.nip.io`), resolved without DNS; plus schemes
 * that only SSRF uses (`gopher://`, `dict://`) and `file://`. Each host a parser could pick is
 * checked (`http://evil@127.0.0.1`, `http://127.0.0.1#@evil.com`).
 */
export const ssrfDetector: ClassDetector = {
  attackClass: 'ssrf',
  scope: ANY_PLACE & ~(IN_PATH | IN_USER_AGENT),
  score(subject: Subject): number {
    // A URL has a `:` (scheme or port) or starts with `//` or `\\`; a bare dotted quad is the rest.
    const text = subject.text;
    if (!(subject.flags & COLON) && !(subject.flags & (SLASH | BACKSLASH) && /^\s*[/\\]{2}/.test(text))) {
      if (!DOTTED_QUAD_VALUE.test(text)) return 0;
    }
    let best = 0;
    for (const url of findUrls(subject.lower)) {
      const score = urlScore(url);
      if (score > best) {
        best = score;
        subject.mark(url.start, url.end);
      }
    }
    // A URL in a sentence ("http://localhost:3000 is my dev server") is a mention, not a target;
    // payloads carry no raw whitespace (their spaces, if any, are encoded).
    return best > 0 && /\S\s+\S/.test(subject.raw.trim()) ? Math.max(0, best - SCORE.prosePenalty) : best;
  },
};

function urlScore(url: FoundUrl): number {
  let best = 0;
  if (DANGEROUS_SCHEMES.has(url.scheme)) best = SCORE.dangerousScheme;
  if (url.scheme === 'file') best = SCORE.fileScheme;
  if (!FETCHED_SCHEMES.has(url.scheme) && best === 0) return 0;
  const bare = url.scheme === BARE || url.scheme === BARE_WITH_PORT;
  for (const host of url.hosts) {
    best = Math.max(best, bare ? bareHostScore(host, url.scheme === BARE_WITH_PORT) : hostScore(host));
  }
  // User info is a host only when it is written as an address or an internal name (not `user:pass@`).
  for (const host of url.userinfoHosts) {
    const score = hostScore(host);
    if (score !== SCORE.singleLabel) best = Math.max(best, score);
  }
  return best;
}

/** A bare value is an address only to a field that expects one: an internal IP alone stays low. */
function bareHostScore(host: string, withPort: boolean): number {
  const score = hostScore(host);
  if (score < SCORE.internalName) return 0;
  if (withPort) return SCORE.bareInternalWithPort;
  if (score < SCORE.internal) return 0; // `localhost` alone is a word as much as an address
  return parsedIpv4Notation === OBFUSCATED_NOTATION ? SCORE.bareObfuscatedInternal : SCORE.bareInternal;
}

function hostScore(host: string): number {
  if (host.includes('${') || host.includes('{{')) return SCORE.templatedHost;
  if (host.includes(':')) return addressScore(classifyIpv6(host), false);
  const v4 = parseIpv4(host);
  if (v4 >= 0) return addressScore(classifyIpv4(v4), parsedIpv4Notation === OBFUSCATED_NOTATION);
  const wrapped = parseIpv4Wrapped(host);
  if (wrapped >= 0) return addressScore(classifyIpv4(wrapped), true);
  return nameScore(host);
}

function addressScore(kind: number, obfuscated: boolean): number {
  if (kind === PUBLIC) return 0;
  if (kind === METADATA_ADDRESS) return SCORE.metadata;
  return obfuscated ? SCORE.obfuscatedInternal : SCORE.internal; // INTERNAL_ADDRESS
}

function nameScore(host: string): number {
  switch (nameKind(host)) {
    case METADATA_NAME:
      return SCORE.metadata;
    case INTERNAL_NAME:
      return SCORE.internalName;
    case IP_IN_NAME:
      return Math.max(embeddedAddressScore(host), SCORE.ssrfTool);
    case SSRF_TOOL:
      return SCORE.ssrfTool;
  }
  const embedded = embeddedAddressScore(host);
  if (embedded > 0) return embedded;
  if (/^[a-z][a-z0-9-]*$/.test(host)) return SCORE.singleLabel; // `http://intranet/`: no public name has one label
  return 0;
}

const DOTTED_QUAD_VALUE = /^\s*\d{1,3}(?:\.\d{1,3}){3}\s*$/;
const DOTTED_QUAD = /(?:^|[.-])(\d{1,3}[.-]\d{1,3}[.-]\d{1,3}[.-]\d{1,3})(?=[.-]|$)/;
const HEX_LABEL = /(?:^|[.-])([0-9a-f]{8})(?=\.)/;

/** `127.0.0.1.nip.io`, `10-0-0-1.sslip.io`, `7f000001.nip.io`: a name that spells an internal address. */
function embeddedAddressScore(host: string): number {
  const quad = DOTTED_QUAD.exec(host);
  const hex = quad === null ? HEX_LABEL.exec(host) : null;
  const written = quad !== null ? quad[1]!.replace(/-/g, '.') : hex !== null ? `0x${hex[1]}` : '';
  if (written === '') return 0;
  const address = parseIpv4(written);
  return address >= 0 && classifyIpv4(address) !== PUBLIC ? SCORE.ipInName : 0;
}
