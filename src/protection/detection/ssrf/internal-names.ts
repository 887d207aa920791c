/** Names that resolve to this host or to cloud metadata without any DNS lookup being needed. */
export const INTERNAL_HOSTNAMES: ReadonlySet<string> = new Set([
  'localhost',
  'localhost.localdomain',
  'ip6-localhost',
  'ip6-loopback',
  'broadcasthost',
  'host.docker.internal',
  'gateway.docker.internal',
  'kubernetes.default',
  'kubernetes.default.svc',
]);

export const METADATA_HOSTNAMES: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.com',
  'metadata.tencentyun.com',
]);

/** Suffixes reserved for private use (RFC 6761, 6762, 8375) or common on internal networks. */
export const INTERNAL_SUFFIXES: readonly string[] = [
  '.localhost',
  '.internal',
  '.local',
  '.localdomain',
  '.home.arpa',
  '.lan',
  '.intranet',
  '.corp',
];

/** Public names that always resolve to 127.0.0.1 (for developers, and for SSRF filter bypasses). */
export const LOOPBACK_DOMAINS: readonly string[] = [
  'localtest.me',
  'lvh.me',
  'vcap.me',
  'localh.st',
  'fuf.me',
  'lacolhost.com',
  'yoogle.com',
];

/** Wildcard DNS that answers with the IP written in the name (`127.0.0.1.nip.io`, `10-0-0-1.sslip.io`). */
export const IP_IN_NAME_DOMAINS: readonly string[] = [
  'nip.io',
  'sslip.io',
  'xip.io',
  'xip.name',
  'nip.direct',
  'traefik.me',
];

/** DNS-rebinding and redirect services, and out-of-band interaction catchers used to probe for SSRF. */
export const SSRF_TOOL_DOMAINS: readonly string[] = [
  '1u.ms',
  'rbndr.us',
  'rebind.network',
  'rebind.it',
  'r3dir.me',
  'burpcollaborator.net',
  'oastify.com',
  'interact.sh',
  'oast.pro',
  'oast.live',
  'oast.site',
  'oast.online',
  'oast.fun',
  'oast.me',
  'dnslog.cn',
  'ceye.io',
  'canarytokens.com',
  'requestbin.net',
];

/** Kinds of name in `NAME_KINDS`. */
export const INTERNAL_NAME = 1;
export const METADATA_NAME = 2;
export const IP_IN_NAME = 3;
export const SSRF_TOOL = 4;

/** Every listed name and domain, by kind: `host` and each of its parent domains is one lookup. */
const NAME_KINDS = new Map<string, number>([
  ...[...INTERNAL_HOSTNAMES, ...LOOPBACK_DOMAINS].map((name) => [name, INTERNAL_NAME] as const),
  ...INTERNAL_SUFFIXES.map((suffix) => [suffix.slice(1), INTERNAL_NAME] as const),
  ...[...METADATA_HOSTNAMES].map((name) => [name, METADATA_NAME] as const),
  ...IP_IN_NAME_DOMAINS.map((name) => [name, IP_IN_NAME] as const),
  ...SSRF_TOOL_DOMAINS.map((name) => [name, SSRF_TOOL] as const),
]);

/**
 * The kind of `host` or of the nearest listed domain above it (`a.b.nip.io` → IP_IN_NAME),
 * or 0. Metadata names count only as themselves (`metadata` is not a suffix).
 */
export function nameKind(host: string): number {
  const exact = NAME_KINDS.get(host);
  if (exact !== undefined) return exact;
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
    const kind = NAME_KINDS.get(host.slice(dot + 1));
    if (kind !== undefined && kind !== METADATA_NAME) return kind;
  }
  return 0;
}
