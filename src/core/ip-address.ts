import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP addresses as 128-bit numbers: IPv6 as is, IPv4 in the IPv4-mapped range `::ffff:0:0/96`, so
 * `1.2.3.4` and `::ffff:1.2.3.4` are one address and one CIDR syntax covers both families.
 */
export type IpNumber = bigint;

const IPV4_MAPPED = 0xffffn << 32n;
const FULL = (1n << 128n) - 1n;

/** An inclusive range of addresses. */
export interface IpRange {
  readonly start: IpNumber;
  readonly end: IpNumber;
}

/** An IPv4 address as an unsigned 32-bit number (the text must be a valid IPv4 address). */
export function ipv4Value(text: string): number {
  let value = 0;
  let part = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      value = value * 256 + part;
      part = 0;
    } else part = part * 10 + code - 48;
  }
  return value * 256 + part;
}

function ipv4Number(text: string): bigint {
  let value = 0n;
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function ipv6Number(text: string): bigint {
  let address = text;
  const zone = address.indexOf('%');
  if (zone !== -1) address = address.slice(0, zone);
  // A trailing dotted IPv4 part (`::ffff:1.2.3.4`) stands for the last two groups.
  const lastColon = address.lastIndexOf(':');
  let tail: string[] = [];
  if (address.includes('.', lastColon)) {
    const v4 = ipv4Number(address.slice(lastColon + 1));
    tail = [(v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16)];
    address = `${address.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - restGroups.length;
  const groups =
    rest === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...restGroups];
  if (tail.length === 2) groups.splice(6, 2, ...tail);
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  return value;
}

/** The address as a number, or null when the text is not an IPv4 or IPv6 address. */
export function parseIp(text: string): IpNumber | null {
  if (isIPv4(text)) return IPV4_MAPPED | ipv4Number(text);
  if (isIPv6(text)) return ipv6Number(text);
  return null;
}

/** True when the number is an IPv4 address (in the mapped range). */
export function isMappedIpv4(value: IpNumber): boolean {
  return value >> 32n === 0xffffn;
}

/**
 * An address or CIDR (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`) as a range, or null when it is
 * not one. The prefix of an IPv4 CIDR counts IPv4 bits; host bits below the prefix are ignored.
 */
export function parseCidr(text: string): IpRange | null {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text.trim() : text.slice(0, slash).trim();
  const address = parseIp(addressText);
  if (address === null) return null;
  const v4 = isIPv4(addressText);
  const bits = v4 ? 32 : 128;
  let prefix = bits;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1).trim();
    if (!/^[0-9]{1,3}$/.test(prefixText)) return null;
    prefix = Number(prefixText);
    if (prefix > bits) return null;
  }
  const hostBits = BigInt(bits - prefix);
  const hostMask = (1n << hostBits) - 1n;
  const start = address & (FULL ^ hostMask);
  return { start, end: start | hostMask };
}

/** The canonical text of a CIDR (`10.0.0.0/8`, `2001:db8::/32`, a single address without prefix). */
export function formatRange(range: IpRange): string {
  const size = range.end - range.start + 1n;
  const hostBits = size.toString(2).length - 1;
  const v4 = isMappedIpv4(range.start);
  const bits = v4 ? 32 : 128;
  const address = v4 ? formatIpv4(range.start) : formatIpv6(range.start);
  return hostBits === 0 ? address : `${address}/${bits - hostBits}`;
}

function formatIpv4(value: IpNumber): string {
  const n = Number(value & 0xffffffffn);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function formatIpv6(value: IpNumber): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt((7 - i) * 16)) & 0xffffn));
  // The longest run of two or more zero groups becomes `::`.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * The key a client is counted under (rate limits, threat scores, bans): its IPv4 address, or the
 * /64 of its IPv6 address, since one subscriber usually holds a whole /64 and could otherwise
 * rotate through 2^64 addresses. Text that is not an address is returned as it is.
 */
export function clientKey(ip: string): string {
  // IPv4, the usual case, without the 128-bit arithmetic.
  if (isIPv4(ip)) return ip;
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return ip.slice(7);
  const value = parseIp(ip);
  if (value === null) return ip;
  if (isMappedIpv4(value)) return formatIpv4(value);
  return formatRange({ start: value & (FULL ^ ((1n << 64n) - 1n)), end: value | ((1n << 64n) - 1n) });
}
