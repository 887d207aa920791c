import { isIPv6 } from 'node:net';

/** How an IPv4 address was written (bits of `parsedIpv4Notation`). */
export const PLAIN_NOTATION = 0;
/** Decimal integer, octal, hex or short (`127.1`) forms that only lenient parsers accept. */
export const OBFUSCATED_NOTATION = 1;

/** Notation of the last address `parseIpv4` accepted. */
export let parsedIpv4Notation = PLAIN_NOTATION;

const MAX_PART_DIGITS = 34;

function partValue(part: string): number {
  if (part.length === 0 || part.length > MAX_PART_DIGITS) return -1;
  if (/^0x[0-9a-f]*$/i.test(part)) return part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
  if (/^0[0-7]*$/.test(part)) return Number.parseInt(part, 8);
  if (/^[1-9][0-9]*$/.test(part)) return Number(part);
  return -1;
}

/**
 * An IPv4 address in any notation `inet_aton` and the WHATWG URL parser accept — `127.0.0.1`,
 * `2130706433`, `0177.0.0.1`, `0x7f.0x0.0x0.0x1`, `0x7f000001`, `127.1`, `127.0.1` — as an
 * unsigned 32-bit number, or -1. Sets `parsedIpv4Notation`.
 */
export function parseIpv4(host: string): number {
  const first = host.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return -1; // every notation starts with a digit
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  const parts = name.split('.');
  if (parts.length > 4) return -1;
  let address = 0;
  let obfuscated = parts.length !== 4;
  for (let i = 0; i < parts.length; i += 1) {
    const part = parts[i]!;
    const value = partValue(part);
    if (value < 0) return -1;
    if (part.length > 1 && part[0] === '0') obfuscated = true;
    const last = i === parts.length - 1;
    const limit = last ? 2 ** (8 * (4 - i)) : 256;
    if (value >= limit) return -1;
    address = last ? address * limit + value : address * 256 + value;
  }
  parsedIpv4Notation = obfuscated ? OBFUSCATED_NOTATION : PLAIN_NOTATION;
  return address >>> 0;
}

const NUMERIC_PART = /^(?:0x[0-9a-f]*|[0-9]+)$/i;

function bigPartValue(part: string): bigint {
  if (/^0x/i.test(part)) return part.length === 2 ? 0n : BigInt(part);
  return /^0[0-7]+$/.test(part) ? BigInt(`0o${part.slice(1)}`) : BigInt(part);
}

/**
 * The same notations read by a parser that wraps around instead of rejecting an overflowing
 * part, as some old ones did (`425.510.425.510`, `7147006462`, `0x41414141a9fea9fe` are
 * 169.254.169.254 to them). -1 unless a part actually overflowed.
 */
export function parseIpv4Wrapped(host: string): number {
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  const parts = name.split('.');
  if (parts.length > 4 || !parts.every((part) => NUMERIC_PART.test(part) && part.length <= MAX_PART_DIGITS)) {
    return -1;
  }
  let address = 0n;
  let overflowed = false;
  for (let i = 0; i < parts.length; i += 1) {
    const bits = i === parts.length - 1 ? BigInt(8 * (4 - i)) : 8n;
    const limit = 1n << bits;
    const value = bigPartValue(parts[i]!);
    if (value >= limit) overflowed = true;
    address = (address << bits) | (value % limit);
  }
  return overflowed ? Number(address) : -1;
}

/** Dotted-decimal form of an IPv4 number. */
export function formatIpv4(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
}

/** 16-bit groups of one side of `::` (an embedded dotted IPv4 tail counts as two groups). */
function groupsOf(side: string): number[] {
  const groups: number[] = [];
  if (side === '') return groups;
  for (const group of side.split(':')) {
    if (group.includes('.')) {
      const v4 = parseIpv4(group);
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else {
      groups.push(Number.parseInt(group, 16));
    }
  }
  return groups;
}

/** The 16 bytes of an IPv6 address (zone id removed), or undefined when it is not one. */
export function parseIpv6(host: string): Uint8Array | undefined {
  const zone = host.indexOf('%');
  const address = zone < 0 ? host : host.slice(0, zone);
  if (!isIPv6(address)) return undefined;
  const gap = address.indexOf('::');
  const head = groupsOf(gap < 0 ? address : address.slice(0, gap));
  const tail = gap < 0 ? [] : groupsOf(address.slice(gap + 2));
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i += 1) {
    bytes[i * 2] = groups[i]! >> 8;
    bytes[i * 2 + 1] = groups[i]! & 0xff;
  }
  return bytes;
}

function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i += 1) if (bytes[i] !== 0) return false;
  return true;
}

function uint32At(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** The IPv4 address carried inside an IPv6 one (mapped, compatible, NAT64, 6to4), or -1. */
export function embeddedIpv4(bytes: Uint8Array): number {
  const tail = uint32At(bytes, 12);
  if (allZero(bytes, 0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return tail; // ::ffff:a.b.c.d
  if (allZero(bytes, 0, 12) && tail > 1) return tail; // ::a.b.c.d, the deprecated compatible form
  if (uint32At(bytes, 0) === 0x0064ff9b && allZero(bytes, 4, 12)) return tail; // 64:ff9b::/96, NAT64
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return uint32At(bytes, 2); // 2002::/16, 6to4
  return -1;
}
