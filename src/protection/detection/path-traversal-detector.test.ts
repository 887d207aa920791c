import { describe, expect, it } from 'vitest';
import { createDetector } from './create-detector.ts';

const detector = createDetector({ classes: { path_traversal: true } });
const traversalScore = (value: string, location = 'query.file'): number =>
  detector.inspectValue(value, location).find((finding) => finding.class === 'path_traversal')?.score ?? 0;

describe('path traversal detector', () => {
  it.each([
    ['../../../../etc/passwd', 'plain traversal to a system file'],
    ['..\\..\\..\\windows\\win.ini', 'Windows separators'],
    ['%2e%2e%2f%2e%2e%2fetc%2fshadow', 'percent-encoded'],
    ['%252e%252e%252fboot.ini', 'double-encoded'],
    ['..%c0%af..%c0%afetc/passwd', 'overlong UTF-8 slash'],
    ['..%c1%9c..%c1%9cboot.ini', 'overlong UTF-8 backslash'],
    ['..%5c..%5c..%5cboot.ini', 'encoded backslash'],
    ['....//....//etc/hosts', 'filter-stripping form'],
    ['..;/..;/WEB-INF/web.xml', 'Tomcat path parameter'],
    ['%uff0e%uff0e%u2215etc%u2215passwd', 'full-width dots and division slash'],
    ['0x2e0x2e/0x2e0x2e/etc/passwd', 'hex dots'],
    ['/etc/passwd', 'absolute path to a system file'],
    ['C:\\Windows\\System32\\config\\SAM', 'absolute Windows path'],
    ['/proc/self/environ', 'process environment'],
    ['php://filter/convert.base64-encode/resource=index.php', 'PHP wrapper'],
    ['zip://upload.zip#shell.php', 'zip wrapper'],
    ['file:///etc/passwd', 'file URL'],
    ['image.png%00.php', 'NUL byte cutting a file name'],
    ['../../../', 'deep traversal without a target'],
    ['%2e%2e/README', 'encoded single traversal'],
  ])('flags %j (%s)', (value) => {
    expect(traversalScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    'docs/2024/report.pdf',
    '../images/photo.jpg',
    'see ../README for details',
    'https://example.com/a/b/c/../d',
    './docs/README.md',
    'C:\\Users\\Anna\\Documents\\letter.docx',
    '/home/anna/Downloads/setup.sh',
    '/etc is a folder name in Unix, right?',
    'see /etc/hosts on Linux',
    'Windows\\System32 folder',
    'Not bad... but the strap broke',
    'Passwd reset link did not arrive',
  ])('does not flag %j', (value) => {
    expect(traversalScore(value)).toBeLessThan(50);
  });

  it('inspects the request path too', () => {
    expect(traversalScore('/static/..%2f..%2f..%2fetc/passwd', 'path')).toBeGreaterThanOrEqual(50);
    expect(traversalScore('/api/v1/orgs/abc/workflows', 'path')).toBe(0);
  });
});
