import { describe, expect, it } from 'vitest';
import { createDetector } from '../create-detector.ts';

const detector = createDetector({ classes: { ssrf: true } });
const ssrfScore = (value: string): number =>
  detector.inspectValue(value, 'body.webhook').find((finding) => finding.class === 'ssrf')?.score ?? 0;

describe('ssrf detector', () => {
  it.each([
    ['http://127.0.0.1:8080/admin', 'loopback'],
    ['http://localhost/', 'localhost'],
    ['http://app.localhost/', 'a name under localhost'],
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['http://metadata.google.internal/computeMetadata/v1/', 'GCP metadata name'],
    ['http://instance-data/latest/', 'AWS metadata name'],
    ['http://[fd00:ec2::254]/latest/', 'AWS IPv6 metadata'],
    ['http://2130706433/', 'decimal integer'],
    ['http://0177.0.0.1/', 'octal'],
    ['http://0x7f.0x0.0x0.0x1/', 'hex parts'],
    ['http://0x7f000001/', 'hex integer'],
    ['http://127.1/', 'short form'],
    ['http://425.510.425.510/', 'octets that wrap around'],
    ['http://7147006462/', 'an integer that wraps around'],
    ['http://7f000001.7f000002.rbndr.us/', 'DNS rebinding service'],
    ['http://[::1]:6379/', 'IPv6 loopback'],
    ['http://[::ffff:127.0.0.1]/', 'IPv4-mapped IPv6'],
    ['http://[::ffff:7f00:1]/', 'IPv4-mapped IPv6, hex'],
    ['http://[0:0:0:0:0:ffff:169.254.169.254]/', 'mapped metadata'],
    ['http://10.0.0.5:8500/v1/agent/self', 'private network'],
    ['https://172.16.5.4/', 'private network'],
    ['http://100.64.1.1/', 'carrier-grade NAT'],
    ['http://evil.example@127.0.0.1/', 'user info before the real host'],
    ['http://127.0.0.1#@evil.example/', 'fragment hiding the real host'],
    ['http://127.1.1.1:80\\@127.2.2.2:80/', 'backslash trick'],
    ['http://127.0.0.1.nip.io/', 'wildcard DNS spelling an IP'],
    ['http://10-0-0-1.sslip.io/', 'wildcard DNS with dashes'],
    ['http://localtest.me/', 'public name for 127.0.0.1'],
    ['//192.168.0.1/admin', 'protocol-relative'],
    ['gopher://example.com:70/_GET', 'gopher'],
    ['dict://localhost:11211/stats', 'dict'],
    ['file:///etc/passwd', 'file URL'],
    ['https://redirector.example/?url=http://localhost:8080', 'nested URL'],
    ['http://①②⑦.⓪.⓪.①/', 'circled digits'],
    ['localhost:6379', 'bare host and port'],
    ['10.0.0.1:8080', 'bare private address and port'],
  ])('flags %j (%s)', (value) => {
    expect(ssrfScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    'https://example.com/a?b=c',
    'https://user:pass@example.com/private',
    'ftp://ftp.example.org/pub/readme.txt',
    'https://cdn.example.net/img/logo@2x.png',
    'http://example.org:8080/path',
    'mailto:support@example.com?subject=Order%20%23123',
    'tel:+1-555-010-9999',
    'user@[192.0.2.1]',
    '12:45',
    '0.000001',
    'localhost',
    '10.0.0.1',
    'http://localhost:3000 is where my dev server runs',
    '{ "images": [ "http://localhost:3000/images/cookie-tin.jpg" ] }',
  ])('does not flag %j', (value) => {
    expect(ssrfScore(value)).toBeLessThan(50);
  });
});
