import { BACKSLASH, COLON, CONTROL, DOT, NON_ASCII, PERCENT, SLASH } from './char-flags.ts';
import { percentDecode } from './normalise/percent-decode.ts';
import { ANY_PLACE, type ClassDetector, IS_KEY, type Subject } from './subject.ts';

/** The NUL character: it ends a file name for C APIs, not for the application in front of them. */
const NUL = '\u0000';

/**
 * Files and places an attacker reads through a traversal or an inclusion, written with `/` as
 * the only separator (the value's own separators, whatever they were, are mapped to `/`).
 */
const SENSITIVE_TARGET = new RegExp(
  [
    String.raw`etc/(?:passwd|shadow|group|gshadow|hosts|issue|sudoers|crontab|fstab|hostname|resolv\.conf|motd|profile|bashrc|master\.passwd|security|httpd|apache2|nginx|mysql|php)`,
    String.raw`proc/(?:self|\d+)(?:/|$)`,
    String.raw`(?:^|/)(?:boot|win|system)\.ini`,
    String.raw`(?:windows|winnt)/(?:system32|repair|win\.ini|system\.ini|panther)`,
    String.raw`system32/(?:drivers|config|cmd\.exe)`,
    'repair/(?:sam|system|security)',
    String.raw`config/(?:sam|system|security)\b`,
    String.raw`(?:^|/)\.(?:htaccess|htpasswd|bash_history|zsh_history|mysql_history|ssh/|aws/|git/config|docker/config|npmrc|pgpass|netrc)`,
    String.raw`(?:^|/)(?:id_rsa|id_dsa|id_ecdsa|id_ed25519|authorized_keys|known_hosts)\b`,
    String.raw`(?:^|/)(?:web\.config|wp-config\.php|php\.ini|httpd\.conf|apache2\.conf|my\.cnf|my\.ini|server\.xml|tomcat-users\.xml|applicationhost\.config)`,
    'var/log/',
    'inetpub/',
    String.raw`(?:^|/)root/\.`,
  ].join('|'),
);

/**
 * Cheap necessary conditions for any score: a `..`, a hex or overlong dot, a NUL, a stream
 * wrapper, or a word of a sensitive target (short ones only right after a separator). Most
 * values (URLs, names, user agents) fail them in a few native passes.
 */
// Short words count right after a separator only; distinctive ones anywhere. One regex, one pass.
const TARGET_WORD = new RegExp(
  [
    String.raw`(?<=^|[/\\%:=.?\u0080-\uffff])(?:etc|proc|var|root|win|system|repair|config|inetpub|httpd|apache|tomcat|web\.config|wp-config|applicationhost|server\.xml|my\.(?:cnf|ini))`,
    String.raw`passwd|shadow|etc.{0,8}(?:issue|hosts|group)|\.ini|environ|system32|\.ht(?:access|passwd)`,
    String.raw`id_(?:rsa|dsa|ecdsa|ed25519)|_history|authorized_keys|known_hosts|\.(?:ssh|aws|git|docker|npmrc|pgpass|netrc)\b`,
  ].join('|'),
);
const WRAPPER_SCHEME = /(?:php|zip|phar|expect|data|glob|compress\.[a-z0-9]+|rar|ogg|ssh2\.[a-z]+|jar|file):/;
const OVERLONG_ESCAPE = /%(?:25)?c[01]/i;

function worthALook(subject: Subject): boolean {
  const lower = subject.lower;
  if (lower.includes('..') || lower.includes('0x') || (subject.flags & CONTROL && lower.includes(NUL)))
    return true;
  if (subject.rawFlags & PERCENT && OVERLONG_ESCAPE.test(subject.raw)) return true;
  if (subject.flags & COLON && WRAPPER_SCHEME.test(lower)) return true;
  return TARGET_WORD.test(lower);
}

/** Stream wrappers of PHP and friends that turn an include into a read, a decode or an execution. */
const WRAPPERS = new Set([
  'php',
  'zip',
  'phar',
  'expect',
  'data',
  'glob',
  'compress.zlib',
  'compress.bzip2',
  'rar',
  'ogg',
  'jar',
]);
const FILE_SCHEME = 'file';
const MAX_WRAPPER_NAME = 16;

/** The wrapper (`php`, `zip`, `file` …) of the first `name:/` in `path` whose name is one, or ''. */
function wrapperIn(path: string): string {
  for (let colon = path.indexOf(':/'); colon >= 0; colon = path.indexOf(':/', colon + 2)) {
    let start = colon;
    while (start > 0 && colon - start < MAX_WRAPPER_NAME && /[a-z0-9.]/.test(path[start - 1]!)) start -= 1;
    const name = path.slice(start, colon);
    if (
      WRAPPERS.has(name) ||
      name.startsWith('ssh2.') ||
      (name === FILE_SCHEME && path.startsWith('//', colon + 1))
    ) {
      return name;
    }
  }
  return '';
}

const SCORE = {
  traversalToTarget: 95,
  absoluteTarget: 85,
  wrapper: 85,
  deepTraversal: 85,
  encodedTraversal: 80,
  nullByteTraversal: 80,
  fileUrl: 80,
  doubleTraversal: 75,
  oddTraversal: 75,
  pathToTarget: 70,
  nullByteAfterName: 70,
  targetInProse: 45,
  singleTraversal: 30,
} as const;

/** Characters that end a `..` the way a path separator would (after decoding leftovers). */
function isSeparatorLike(code: number): boolean {
  return code === 47 || code === 92 || code === 37 || code === 59 || (code >= 0x80 && code !== 0xa0);
}

/** Number of `..` (or longer runs of dots) followed by something that acts as a separator. */
function countTraversals(text: string): number {
  let count = 0;
  let i = text.indexOf('..');
  while (i >= 0) {
    let end = i;
    while (text.charCodeAt(end) === 46) end += 1;
    if (isSeparatorLike(text.charCodeAt(end))) count += 1;
    i = text.indexOf('..', end);
  }
  return count;
}

/**
 * The value in a path-only shape: the hex spellings of `.`, `/`, `\` (`0x2e`) that some decoders
 * accept are replaced, NULs are dropped (`.%00.` is `..` to a C string API), lower case.
 */
function canonicalPath(text: string): string {
  let path = text.toLowerCase();
  if (path.includes('0x')) path = path.replace(/0x2e/g, '.').replace(/0x2f/g, '/').replace(/0x5c/g, '\\');
  if (path.includes(NUL)) path = path.replaceAll(NUL, '');
  return path;
}

/**
 * `/` for every run of characters that are not part of a file name, and for escapes left
 * undecoded (`etc%c1%8spasswd` → `etc/passwd`): what a lenient decoder makes of them varies, that
 * they separate does not.
 */
function withPlainSeparators(path: string): string {
  return path.replace(/%[0-9a-z]{0,2}/g, '/').replace(/[^a-z0-9._-]+/g, '/');
}

/**
 * Path traversal and file inclusion: `../` in any spelling (double-encoded, overlong UTF-8,
 * `%u2215`, `0x2e`, `....//`, `..;/`), absolute paths to system files, stream wrappers
 * (`php://filter`, `zip://`), and NUL bytes that cut a file name. A single `../` to an ordinary
 * file (`../images/photo.jpg`) stays below the threshold.
 */
export const pathTraversalDetector: ClassDetector = {
  attackClass: 'path_traversal',
  scope: ANY_PLACE | IS_KEY,
  inspectsPlainWord: (word) => word.includes('0x'),
  score(subject: Subject): number {
    const separators = subject.flags & (DOT | SLASH | BACKSLASH | PERCENT | NON_ASCII | CONTROL);
    if (separators === 0 && !subject.text.includes('0x')) return 0;
    if (!worthALook(subject)) return 0;
    subject.mark(0, subject.text.length);
    const score = pathScore(subject.text, subject.raw, subject.layers !== 0);
    // Old IIS read `%c1%af` as `/` (the low seven bits) where UTF-8 says `o`: both readings count.
    if (score >= SCORE.encodedTraversal || !OVERLONG_PAIR.test(subject.raw)) return score;
    const alternative = decodeLowBits(subject.raw);
    return Math.max(score, pathScore(alternative, subject.raw, true));
  },
};

const OVERLONG_PAIR = /%(?:25)?c[01]%(?:25)?[0-9a-f]{2}/i;
const OVERLONG_PAIRS = /%(?:25)?c[01]%(?:25)?([0-9a-f]{2})/gi;

function decodeLowBits(raw: string): string {
  const replaced = raw.replace(OVERLONG_PAIRS, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16) & 0x7f),
  );
  return percentDecode(percentDecode(replaced));
}

/** Evasion shapes of `../`: three or more dots, doubled or mixed separators (`....//`, `..\/`, `\../`). */
const ODD_TRAVERSAL = /\.{3,}[/\\]|\.\.(?:\/\/|\\\\|\/\\|\\\/)|\\\.\.\/|\/\.\.\\/;

/** Beyond this many traversals the target is looked for only near the start (the score is high already). */
const DEEP = 3;
const DEEP_TARGET_WINDOW = 4096;

function pathScore(text: string, raw: string, decoded: boolean): number {
  const path = canonicalPath(text);
  const traversals = countTraversals(path);
  const plain = withPlainSeparators(traversals >= DEEP ? path.slice(0, DEEP_TARGET_WINDOW) : path);
  const target = SENSITIVE_TARGET.test(plain);
  if (target && traversals > 0) return SCORE.traversalToTarget;
  const wrapper = path.includes(':/') ? wrapperIn(path) : '';
  if (wrapper !== '' && wrapper !== FILE_SCHEME) return SCORE.wrapper;
  if (target) return targetScore(path);
  if (wrapper === FILE_SCHEME) return SCORE.fileUrl;
  if (traversals >= DEEP) return SCORE.deepTraversal;
  if (traversals > 0 && (decoded || !/\.\.[/\\]/.test(raw))) return SCORE.encodedTraversal;
  const hadNul = text.includes(NUL);
  if (traversals > 0 && hadNul) return SCORE.nullByteTraversal;
  if (traversals === 2) return SCORE.doubleTraversal;
  if (traversals > 0 && ODD_TRAVERSAL.test(path)) return SCORE.oddTraversal;
  if (hadNul && nulCutsFileName(text)) return SCORE.nullByteAfterName;
  return traversals > 0 ? SCORE.singleTraversal : 0;
}

const EXTENSION_BEFORE = /\.[a-z0-9]{1,5}$/i;
const EXTENSION_AFTER = /^\.[a-z0-9]{1,5}/i;

/** `image.png\0.php`, `shell.php\0`: a NUL that ends a file name for C but not for the application. */
function nulCutsFileName(text: string): boolean {
  for (let at = text.indexOf(NUL); at >= 0; at = text.indexOf(NUL, at + 1)) {
    if (
      EXTENSION_BEFORE.test(text.slice(Math.max(0, at - 6), at)) ||
      EXTENSION_AFTER.test(text.slice(at + 1, at + 7))
    ) {
      return true;
    }
  }
  return false;
}

/**
 * A system file named without traversal: an absolute path (`/etc/passwd`, `C:\\boot.ini`,
 * `%SYSTEMROOT%\\win.ini`), a relative one, or a mention in prose ("edit /etc/hosts").
 */
function targetScore(path: string): number {
  const tokens = path.trim().split(/\s+/, MAX_TOKENS);
  const index = tokens.findIndex((token) => SENSITIVE_TARGET.test(withPlainSeparators(token)));
  if (index < 0) return SCORE.pathToTarget; // the target spans tokens
  // Other plain words around it make it a mention in prose ("see /etc/hosts on Linux").
  if (tokens.some((token, i) => i !== index && PLAIN_WORD.test(token))) return SCORE.targetInProse;
  return ABSOLUTE.test(tokens[index]!) ? SCORE.absoluteTarget : SCORE.pathToTarget;
}

const MAX_TOKENS = 64;
const PLAIN_WORD = /^[a-z]{2,}[.,:;!?]?$/;
const ABSOLUTE = /^(?:[/\\]|[a-z]:[/\\]|%[a-z]+%|file:)/;
