import {
  AMP,
  BACKSLASH,
  BACKTICK,
  BRACE,
  DOLLAR,
  GT,
  LT,
  NEWLINE,
  PAREN,
  PIPE,
  QUOTES,
  SEMI,
} from '../char-flags.ts';
import { ANY_PLACE, type ClassDetector, IN_PATH, IS_KEY, type Subject } from '../subject.ts';
import { codeCallScore, codeSpan, templateInjectionScore } from './code-injection.ts';
import {
  ALONE_COMMANDS,
  DISTINCTIVE_COMMANDS,
  NET_SUBCOMMANDS,
  NUMERIC_ARGUMENT_COMMANDS,
  SHELLS,
  USEFUL_ALONE,
  WORD_COMMANDS,
} from './command-words.ts';
import {
  CLOSE,
  REDIRECT,
  SEPARATOR,
  ShellTokens,
  SUBSTITUTION,
  shellWord,
  tokenizeShell,
  WORD,
} from './shell-tokenizer.ts';

const SCORE = {
  /** A command after `;`, `|`, `&&`, a newline, or in `$(…)` / backticks. */
  chained: 85,
  /** An ordinary word (`cat`, `type`) chained, with arguments only a shell takes. */
  chainedWord: 80,
  /** A command line as the whole value: `cat /etc/passwd`, `ls -la /tmp`. */
  leading: 70,
  /** A command word written with wildcards: `/???/??t /???/p??s??`. */
  globbedCommand: 75,
  /** A recon command alone: `whoami`, `ipconfig`. */
  alone: 60,
} as const;

/** Longest command word looked at (`/usr/local/sbin/whoami.exe` fits). */
const MAX_COMMAND_WORD = 64;

/** Arguments examined after a command word. */
const MAX_ARGUMENTS = 4;

const tokens = new ShellTokens();

// Arguments only a shell command takes: options, absolute or Windows paths, URLs, IPs, variables, globs.
const SHELL_ARGUMENT =
  /^(?:-{1,2}[a-z0-9]|\/[a-z0-9]|~\/|\.{1,2}\/|[a-z]:[\\/]|\\\\|[a-z]+:\/\/|\d{1,3}(?:\.\d{1,3}){3}\b|%[a-z_]+%|\$[a-z_{]|.*\*|.*\?.|.*\/(?:etc|bin|tmp|dev|var|home|proc|usr)\b)/;

/**
 * OS command injection: the value is tokenized as a shell would (separators, substitutions,
 * redirections; quotes, escapes and `$IFS` see-through), and a known command in a command
 * position is scored by where it is and by its arguments. "Tom & Jerry", "rock; paper" and
 * "cat food for kittens" have no command with shell arguments.
 */
export const cmdiDetector: ClassDetector = {
  attackClass: 'cmdi',
  scope: ANY_PLACE | IS_KEY,
  inspectsPlainWord: (word) => word.length >= MIN_ALONE_COMMAND && word.length <= MAX_ALONE_COMMAND,
  score(subject: Subject): number {
    const text = subject.text;
    // A URL path is a path: `/docs/ping` or `/api/route` names a resource, not a program. Only
    // shell syntax (separators, substitutions, redirections) makes one a command line.
    if (subject.where & IN_PATH && !(subject.flags & OPERATORS)) return 0;
    if (subject.flags === 0) return aloneCommandScore(subject);
    let best = 0;
    if (subject.flags & (PAREN | LT | DOLLAR | BACKTICK)) {
      best = codeCallScore(subject.lower);
      if (best > 0) subject.mark(codeSpan.start, codeSpan.end);
    }
    if (subject.flags & BRACE || (subject.flags & LT && text.includes('<%'))) {
      const template = templateInjectionScore(subject.lower);
      if (template > best) {
        best = template;
        subject.mark(codeSpan.start, codeSpan.end);
      }
    }
    const obfuscated =
      (subject.flags & (QUOTES | BACKSLASH | DOLLAR)) !== 0 || text.includes('^') || WILDCARD_PATH.test(text);
    // Without an operator only the first word can be a command: look at it before tokenizing.
    if (!(subject.flags & OPERATORS)) {
      if (obfuscated ? !firstWordIsCommand(text) : !LEADING_COMMAND.test(subject.lower)) return best;
    }
    // Unobfuscated text without a single command word cannot hold a command line.
    if (!obfuscated && !COMMAND_WORD.test(subject.lower)) return best;
    const command = commandLineScore(text);
    if (command > best) {
      best = command;
      subject.mark(commandStart, text.length);
    }
    return best;
  },
};

const COMMAND_NAMES = [...DISTINCTIVE_COMMANDS, ...WORD_COMMANDS]
  .map((word) => word.replace('.', '\\.'))
  .sort((a, b) => b.length - a.length)
  .join('|');
/** Some command word anywhere (as a word); tested on the lower-cased value. */
const COMMAND_WORD = new RegExp(`(?<![a-z0-9_.-])(?:${COMMAND_NAMES})(?![a-z0-9_-])`);
/** A command word, possibly by its path, at the start of the value (after blanks or quotes). */
const LEADING_COMMAND = new RegExp(
  `^[\\s'"\`]*(?:[a-z]:)?(?:[\\w./\\\\-]{0,64}[/\\\\])?(?:${COMMAND_NAMES})(?:\\.exe)?(?![a-z0-9_-])`,
);
/** `/???/`, `/b?n/`: wildcards in a path hide the names a word search would find. */
const WILDCARD_PATH = /\/[\w]*[?*]/;
/** A path of wildcards and letters with at least two wildcards, as a command word. */
const GLOBBED_PATH = /^\/(?=[^/]*[?*][^/]*\/|.*[?*].*[?*])[\w?*]+\/[\w?*./]+$/;
const OPERATORS = SEMI | PIPE | AMP | BACKTICK | DOLLAR | NEWLINE | PAREN | BRACE | LT | GT;
const FIRST_WORD = /^[\s'"`]*(\S{1,64})/;
let commandStart = 0;

/** A value of letters and digits only is a command only as one of the recon commands (`whoami`). */
function aloneCommandScore(subject: Subject): number {
  const text = subject.text;
  if (
    text.length > MAX_ALONE_COMMAND ||
    text.length < MIN_ALONE_COMMAND ||
    !ALONE_INITIALS.includes(text[0]!.toLowerCase())
  )
    return 0;
  if (!ALONE_COMMANDS.has(subject.lower)) return 0;
  subject.mark(0, text.length);
  return SCORE.alone;
}

const MIN_ALONE_COMMAND = 3;
const MAX_ALONE_COMMAND = 12;
const ALONE_INITIALS = [...new Set([...ALONE_COMMANDS].map((name) => name[0]))].join('');

function firstWordIsCommand(text: string): boolean {
  const match = FIRST_WORD.exec(text);
  if (match === null) return false;
  const name = commandName(shellWord(match[1]!, 0, match[1]!.length), false);
  return DISTINCTIVE_COMMANDS.has(name) || WORD_COMMANDS.has(name);
}

function commandLineScore(text: string): number {
  tokenizeShell(text, tokens);
  const markdown = text.includes('`') && isMarkdownProse(text);
  let best = 0;
  let commandPosition = true;
  let chained = false;
  for (let i = 0; i < tokens.count; i += 1) {
    const kind = tokens.kinds[i]!;
    if (kind !== WORD) {
      // In prose, backticks are markdown code spans ("run `ls -la` to list"), not substitutions.
      const codeSpan = markdown && kind === SUBSTITUTION && text.charCodeAt(tokens.starts[i]!) === 96;
      commandPosition = !codeSpan && (kind === SEPARATOR || kind === SUBSTITUTION);
      if (commandPosition) chained = true;
      continue;
    }
    if (!commandPosition) continue;
    // A word of quotes only (`'` in `' whoami`) closes a quoted argument; the command comes next.
    if (onlyQuotes(text, tokens.starts[i]!, tokens.ends[i]!)) continue;
    commandPosition = false;
    const score = commandScore(text, i, chained);
    if (score > best) {
      best = score;
      commandStart = tokens.starts[i]!;
    }
    if (best >= SCORE.chained) return best;
  }
  return best;
}

function onlyQuotes(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) {
    const code = text.charCodeAt(i);
    if (code !== 39 && code !== 34 && code !== 96) return false;
  }
  return true;
}

const MARKDOWN_PROSE_WORDS = 3;
const BACKTICK_SPAN = /`[^`]*`/g;
const PROSE_WORD = /(?:^|\s)[a-z]{2,}[.,;:!?]?(?=\s|$)/gi;

/** Words of prose outside backtick spans: the backticks are markdown, not a shell. */
function isMarkdownProse(text: string): boolean {
  const outside = text.replace(BACKTICK_SPAN, ' ');
  return (outside.match(PROSE_WORD)?.length ?? 0) >= MARKDOWN_PROSE_WORDS;
}

/** The command name: path and `.exe` removed, brace expansion (`{cat,/etc/passwd}`) cut. */
function commandName(word: string, braced: boolean): string {
  let name = word;
  const comma = braced ? name.indexOf(',') : -1;
  if (comma > 0) name = name.slice(0, comma);
  const slash = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  if (slash >= 0) name = name.slice(slash + 1);
  return name.endsWith('.exe') || name.endsWith('.com') ? name.slice(0, -4) : name;
}

function commandScore(text: string, index: number, chained: boolean): number {
  const start = tokens.starts[index]!;
  if (tokens.ends[index]! - start > MAX_COMMAND_WORD) return 0;
  const word = shellWord(text, start, tokens.ends[index]!);
  if (GLOBBED_PATH.test(word)) return SCORE.globbedCommand; // `/???/??t`: a command hidden behind wildcards
  const braced = index > 0 && text.charCodeAt(start - 1) === 123; /* `{cat,/etc/passwd}` */
  const name = commandName(word, braced);
  // `/usr/bin/id`, `/bin/cat`: a command by its path is a command even when its name is a word.
  const byPath = word.startsWith('/') && word.endsWith(name) && word.length > name.length;
  const distinctive = DISTINCTIVE_COMMANDS.has(name) || (byPath && WORD_COMMANDS.has(name));
  if (!distinctive && !WORD_COMMANDS.has(name)) return 0;
  const next = tokens.kind(index + 1);
  const endsHere = next === 0 || next === SEPARATOR || next === CLOSE || next === SUBSTITUTION;
  const bracedArguments =
    braced &&
    word
      .split(',')
      .slice(1)
      .some((argument) => SHELL_ARGUMENT.test(argument));
  const shellArguments = bracedArguments || hasShellArguments(text, index, name);
  if (chained) {
    // `$(printf …)`: nothing but a shell writes `$(`, so any command inside is one.
    if (distinctive || (index > 0 && text.startsWith('$(', tokens.starts[index - 1]!))) return SCORE.chained;
    return (endsHere && USEFUL_ALONE.has(name)) || shellArguments ? SCORE.chainedWord : 0;
  }
  // A command line as the whole value, unless words of prose follow ("sleep 8 hours a night").
  if (shellArguments) return proseFollows(text, index, name) ? 0 : SCORE.leading;
  const first = index === 0 || quoteBreakoutBefore(text, start);
  if (endsHere && first && (ALONE_COMMANDS.has(name) || byPath)) return SCORE.alone;
  return 0;
}

/** `' whoami`, `" id`: only quotes and blanks before the word, as when closing a quoted argument. */
function quoteBreakoutBefore(text: string, start: number): boolean {
  return /^\s*['"`]+\s+$/.test(text.slice(0, start));
}

const PROSE_WORDS_AFTER_COMMAND = 2;
const PLAIN_WORD = /^[a-z]{2,}[,.!?:]?$/i;

/**
 * Plain words after the last shell-like argument: prose that names a command ("sleep 8 hours
 * a night", "rm -rf is dangerous, don't run it"), not a command line (`net user x /ADD`).
 */
function proseFollows(text: string, index: number, name: string): boolean {
  let words = 0;
  for (let i = index + 1; i < tokens.count && tokens.kinds[i] === WORD; i += 1) {
    const word = text.slice(tokens.starts[i]!, tokens.ends[i]!);
    if (isShellArgument(text, i, name)) words = 0;
    else if (PLAIN_WORD.test(word) && !WORD_COMMANDS.has(word.toLowerCase())) words += 1;
  }
  return words >= PROSE_WORDS_AFTER_COMMAND;
}

/** True when the words after the command look like what a shell command takes. */
function hasShellArguments(text: string, index: number, name: string): boolean {
  for (let i = index + 1; i < tokens.count && i <= index + MAX_ARGUMENTS; i += 1) {
    const kind = tokens.kinds[i]!;
    if (kind === REDIRECT) return true;
    if (kind !== WORD) return false;
    if (isShellArgument(text, i, name)) return true;
    const argument = shellWord(text, tokens.starts[i]!, tokens.ends[i]!);
    if (i === index + 1 && (DISTINCTIVE_COMMANDS.has(argument) || WORD_COMMANDS.has(argument))) {
      return name === 'which' || name === 'where' || name === 'sudo' || name === 'xargs' || name === 'nohup';
    }
  }
  return false;
}

/** Word `i` is what only a shell command takes: an option, a path, a URL, an IP, a variable… */
function isShellArgument(text: string, i: number, name: string): boolean {
  const argument = shellWord(text, tokens.starts[i]!, tokens.ends[i]!);
  // Backslashes matter in Windows paths (`C:\\Windows`): the raw word is tested too.
  const raw = text.slice(tokens.starts[i]!, tokens.ends[i]!).toLowerCase();
  if (SHELL_ARGUMENT.test(argument) || SHELL_ARGUMENT.test(raw)) return true;
  if (NUMERIC_ARGUMENT_COMMANDS.has(name) && /^\d+$/.test(argument)) return true;
  if (name === 'net' && NET_SUBCOMMANDS.has(argument)) return true;
  return SHELLS.has(name) && (argument === '-c' || argument === '/c' || argument === '-i');
}
