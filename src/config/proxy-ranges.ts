import { isIP } from 'node:net';

// Names proxy-addr (Fastify's trustProxy) understands besides addresses and CIDRs.
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Why a `TRUSTED_PROXIES` entry is unusable, or null when it is an address, a CIDR or a named range. */
export function proxyRangeProblem(entry: string): string | null {
  if (NAMED_RANGES.has(entry)) return null;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) {
    return `"${entry}" is not an IP address, a CIDR (e.g. 10.0.0.0/8) or one of ${[...NAMED_RANGES].join(', ')}`;
  }
  if (prefix === undefined) return null;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max)
    return `"${entry}" has a prefix length outside 0-${max}`;
  return null;
}

/** True for a range that covers every address (anyone could then spoof X-Forwarded-For). */
export function trustsEveryone(entry: string): boolean {
  const [address, prefix] = entry.split('/');
  return prefix !== undefined && Number(prefix) === 0 && isIP(address ?? '') !== 0;
}
