import { describe, expect, it } from 'vitest';
import {
  classifyIpv4,
  classifyIpv6,
  INTERNAL_ADDRESS,
  METADATA_ADDRESS,
  PUBLIC,
} from './internal-addresses.ts';
import {
  embeddedIpv4,
  formatIpv4,
  OBFUSCATED_NOTATION,
  parsedIpv4Notation,
  parseIpv4,
  parseIpv4Wrapped,
  parseIpv6,
} from './ip-address.ts';

describe('parseIpv4', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1', false],
    ['2130706433', '127.0.0.1', true],
    ['0177.0.0.1', '127.0.0.1', true],
    ['017700000001', '127.0.0.1', true],
    ['0x7f.0x0.0x0.0x1', '127.0.0.1', true],
    ['0x7f000001', '127.0.0.1', true],
    ['127.1', '127.0.0.1', true],
    ['127.0.1', '127.0.0.1', true],
    ['0x7f.1', '127.0.0.1', true],
    ['169.254.169.254.', '169.254.169.254', false],
    ['0', '0.0.0.0', true],
  ])('reads %j as %s', (host, dotted, obfuscated) => {
    const address = parseIpv4(host);
    expect(formatIpv4(address)).toBe(dotted);
    expect(parsedIpv4Notation === OBFUSCATED_NOTATION).toBe(obfuscated);
  });

  it.each(['example.com', '256.0.0.1', '1.2.3.4.5', '08.0.0.1', '1e3', ''])('rejects %j', (host) => {
    expect(parseIpv4(host)).toBe(-1);
  });
});

describe('parseIpv4Wrapped', () => {
  it.each([
    ['425.510.425.510', '169.254.169.254'],
    ['7147006462', '169.254.169.254'],
    ['0x41414141a9fea9fe', '169.254.169.254'],
  ])('reads %j as %s, as parsers that wrap around do', (host, dotted) => {
    expect(formatIpv4(parseIpv4Wrapped(host))).toBe(dotted);
  });

  it('leaves addresses that do not overflow to parseIpv4', () => {
    expect(parseIpv4Wrapped('127.0.0.1')).toBe(-1);
    expect(parseIpv4Wrapped('example.com')).toBe(-1);
  });
});

describe('internal addresses', () => {
  it.each([
    ['127.0.0.1', INTERNAL_ADDRESS],
    ['10.1.2.3', INTERNAL_ADDRESS],
    ['172.31.255.255', INTERNAL_ADDRESS],
    ['192.168.0.1', INTERNAL_ADDRESS],
    ['100.64.0.1', INTERNAL_ADDRESS],
    ['0.0.0.0', INTERNAL_ADDRESS],
    ['169.254.169.254', METADATA_ADDRESS],
    ['100.100.100.200', METADATA_ADDRESS],
    ['8.8.8.8', PUBLIC],
    ['172.32.0.1', PUBLIC],
    ['192.0.2.1', PUBLIC],
  ])('classifies %s', (dotted, kind) => {
    expect(classifyIpv4(parseIpv4(dotted))).toBe(kind);
  });

  it.each([
    ['::1', INTERNAL_ADDRESS],
    ['::', INTERNAL_ADDRESS],
    ['fc00::1', INTERNAL_ADDRESS],
    ['fd12:3456::1', INTERNAL_ADDRESS],
    ['fe80::1%eth0', INTERNAL_ADDRESS],
    ['::ffff:127.0.0.1', INTERNAL_ADDRESS],
    ['::ffff:7f00:1', INTERNAL_ADDRESS],
    ['0:0:0:0:0:ffff:127.0.0.1', INTERNAL_ADDRESS],
    ['64:ff9b::a9fe:a9fe', METADATA_ADDRESS],
    ['fd00:ec2::254', METADATA_ADDRESS],
    ['2002:7f00:1::', INTERNAL_ADDRESS],
    ['2001:4860:4860::8888', PUBLIC],
    ['::ffff:8.8.8.8', PUBLIC],
  ])('classifies IPv6 %s', (address, kind) => {
    expect(classifyIpv6(address)).toBe(kind);
  });

  it('finds the IPv4 address inside an IPv6 one', () => {
    expect(formatIpv4(embeddedIpv4(parseIpv6('::ffff:10.0.0.1')!))).toBe('10.0.0.1');
    expect(embeddedIpv4(parseIpv6('2001:db8::1')!)).toBe(-1);
  });
});
