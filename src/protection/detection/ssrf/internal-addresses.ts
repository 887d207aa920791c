import { BlockList } from 'node:net';
import { embeddedIpv4, formatIpv4, parseIpv6 } from './ip-address.ts';

/**
 * Addresses a server should never be made to fetch: this host, private networks, link-local
 * (where cloud metadata lives), carrier-grade NAT, and the other special-purpose ranges that
 * are not the public internet. Documentation ranges (192.0.2.0/24 …) are left out: they route
 * nowhere and appear in examples.
 */
const INTERNAL = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['64:ff9b:1::', 48],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv6');
}

/** Cloud metadata endpoints (AWS, GCP, Azure, DigitalOcean, OpenStack, Oracle, Alibaba). */
const METADATA_ADDRESSES = new Set(['169.254.169.254', '169.254.170.2', '192.0.0.192', '100.100.100.200']);
const METADATA_IPV6 = parseIpv6('fd00:ec2::254')!;

/** What an address is, for scoring. */
export const PUBLIC = 0;
export const INTERNAL_ADDRESS = 1;
export const METADATA_ADDRESS = 2;

export function classifyIpv4(address: number): number {
  const dotted = formatIpv4(address);
  if (METADATA_ADDRESSES.has(dotted)) return METADATA_ADDRESS;
  return INTERNAL.check(dotted, 'ipv4') ? INTERNAL_ADDRESS : PUBLIC;
}

/** Classifies an IPv6 literal, including the IPv4 address it may carry (`::ffff:127.0.0.1`, NAT64). */
export function classifyIpv6(host: string): number {
  const bytes = parseIpv6(host);
  if (bytes === undefined) return PUBLIC;
  const v4 = embeddedIpv4(bytes);
  if (v4 >= 0) return classifyIpv4(v4);
  if (bytes.every((byte, i) => byte === METADATA_IPV6[i])) return METADATA_ADDRESS;
  const zone = host.indexOf('%');
  return INTERNAL.check(zone < 0 ? host : host.slice(0, zone), 'ipv6') ? INTERNAL_ADDRESS : PUBLIC;
}
