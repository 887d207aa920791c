import { describe, expect, it } from 'vitest';
import { createDetector } from './create-detector.ts';

const detector = createDetector({ classes: { scanner: true } });
const scannerScore = (value: string, location: string): number =>
  detector.inspectValue(value, location).find((finding) => finding.class === 'scanner')?.score ?? 0;

describe('scanner detector', () => {
  it.each([
    'sqlmap/1.7.2#stable (https://sqlmap.org)',
    'Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)',
    'Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)',
    'masscan/1.3 (https://github.com/robertdavidgraham/masscan)',
    'Mozilla/5.0 zgrab/0.x',
    'Nuclei - Open-source project (github.com/projectdiscovery/nuclei)',
    'WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)',
    'Fuzz Faster U Fool v2.0.0',
  ])('flags the User-Agent %j', (value) => {
    expect(scannerScore(value, 'header.user-agent')).toBeGreaterThanOrEqual(50);
  });

  it.each([
    '/.env',
    '/.git/config',
    '/wp-login.php',
    '/wp-admin/setup-config.php',
    '/phpmyadmin/index.php',
    '/.aws/credentials',
    '/server-status',
    '/actuator/env',
    '/cgi-bin/luci',
    '/backup.sql',
    '/index.php.bak',
    '/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php',
  ])('flags the path %j', (value) => {
    expect(scannerScore(value, 'path')).toBeGreaterThanOrEqual(50);
  });

  it.each([
    ['python-requests/2.31.0', 'header.user-agent'],
    ['curl/8.4.0', 'header.user-agent'],
    ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'header.user-agent'],
    ['/.well-known/security.txt', 'path'],
    ['/api/v1/orgs/abc/workflows', 'path'],
    ['/files/report.zip', 'path'],
    ['/favicon.ico', 'path'],
  ])('does not flag %j at %s', (value, location) => {
    expect(scannerScore(value, location)).toBe(0);
  });

  it('looks only at the path and the User-Agent', () => {
    expect(scannerScore('sqlmap/1.7', 'query.q')).toBe(0);
    expect(scannerScore('/.env', 'body.file')).toBe(0);
  });
});
