/** What replaces a redacted value. */
export const REDACTED = '[REDACTED]';

/**
 * Examples of field names whose values are secrets wherever they appear (log lines at any depth,
 * masked objects); `isSecretKey` decides for any name. The value is redacted whole, whatever its type.
 */
export const SECRET_KEYS: readonly string[] = [
  'password',
  'current_password',
  'new_password',
  'passwd',
  'secret',
  'client_secret',
  'webhook_secret',
  'token',
  'access_token',
  'refresh_token',
  'mfa_token',
  'id_token',
  'api_key',
  'apiKey',
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'masterKey',
  'master_key',
  'credentials',
  'backup_codes',
];

// A field is secret when its name ends with one of these words, in any case and with any short
// prefix: `accessToken`, `x-auth-token`, `proxy-authorization`, `clientSecret`, `private_key`,
// `passphrase`. Names that merely start with one (`tokenCount`, `secret_name`) are left alone.
const SECRET_SUFFIXES =
  /pass(?:word|wd|phrase)|secret|token|authorization|cookie|api[_-]?key|private[_-]?key|master[_-]?key|credentials|backup[_-]?codes/
    .source;
const KEYS = String.raw`[A-Za-z0-9_-]{0,40}?(?:${SECRET_SUFFIXES})`;
const SECRET_KEY_NAME = new RegExp(`^${KEYS}$`, 'i');

/** True when a field of this name holds a secret (see SECRET_KEYS for examples). */
export function isSecretKey(name: string): boolean {
  return SECRET_KEY_NAME.test(name);
}

// JSON values as they appear in the serialized line: strings, and objects or arrays nested up
// to NESTING levels (strings inside them may hold any bracket or quote).
const NESTING = 4;
/** Pattern source of a JSON string as serialized (quotes included). */
export const JSON_STRING = /"(?:[^"\\]|\\.)*"/.source;
const JSON_OTHER = /[^{}[\]"]/.source;
// The same values inside a JSON string (JSON logged as text): quotes appear as \" and an inner
// escape as \\ followed by one more character or escape.
const ESCAPED_CHARS = /(?:[^"\\]|\\\\(?:\\.|[^"\\])|\\[^"\\])*/.source;
/** Pattern source of a JSON string inside a JSON string (`\"…\"`, escaped quotes included). */
export const ESCAPED_STRING = String.raw`\\"${ESCAPED_CHARS}\\"`;
const ESCAPED_OTHER = /[^{}[\]"\\]|\\[^"\\]/.source;

function containers(string: string, other: string, depth: number): string {
  const item =
    depth <= 1 ? `${string}|${other}` : `${string}|${containers(string, other, depth - 1)}|${other}`;
  return String.raw`\{(?:${item})*\}|\[(?:${item})*\]`;
}

const JSON_VALUE = `${containers(JSON_STRING, JSON_OTHER, NESTING)}|${JSON_STRING}|${/[^,}\]\s]+/.source}`;
// Last, a string cut short (a truncated message) is redacted to its end.
const ESCAPED_VALUE = [
  containers(ESCAPED_STRING, ESCAPED_OTHER, NESTING),
  ESCAPED_STRING,
  /[^,}\]\s"\\]+/.source,
  String.raw`\\"${ESCAPED_CHARS}`,
].join('|');

// Names of query or form parameters that carry secrets, with a short prefix (`new_password`,
// `client_secret`, `x-api-key`). Every repetition in these patterns is bounded: log lines carry
// attacker-chosen text, and an unbounded `(?:x+-)*` is quadratic on `a-a-a-…` (ReDoS).
const PARAMS = /(?:[a-z0-9]{1,32}[_-]){0,4}(?:password|passwd|pwd|token|secret|api[_-]?key)/.source;

// One pass over each serialized line. Alternatives, in the order the replacer reads them:
//  1 `"secret_key":<value>` in the JSON line itself, at any depth;
//  2 `\"secret_key\":<value>` in JSON that was logged inside a string;
//  3 bearer/basic credentials; 4 URL passwords; 5 query or form parameters;
//  6 JWTs; 7 Bastion API keys.
const VALUE_PATTERN = new RegExp(
  [
    String.raw`("(?:${KEYS})":\s*)(?:${JSON_VALUE})`,
    String.raw`(\\"(?:${KEYS})\\":\s*)(?:${ESCAPED_VALUE})`,
    /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/.source,
    // The password runs to the last @ of the authority (an unencoded @ may be part of it).
    /\b([a-z][a-z0-9+.-]{0,31}:\/\/[^:/\s"@\\]{0,256}:)[^\s"/\\?#]{1,256}@/.source,
    String.raw`(\b${PARAMS}=)[^&\s"#\\]+`,
    /\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/.source,
    /\bbst_[A-Za-z0-9_-]{8,}/.source,
  ].join('|'),
  'gi',
);

/**
 * Every secret `redactValues` replaces contains one of these words or marks: a cheap pre-check.
 * The words are factored by hand (`password` also finds `new_password`; a test checks that every
 * secret key is found), which makes the scan of a line a fifth faster than one word per key.
 */
export const SUSPECT =
  /p(?:ass(?:wor|w|phrase)|wd|rivate[_-]?key)|secret|token|a(?:pi[_-]?key|uthorization)|cookie|master[_-]?key|credentials|b(?:ackup[_-]?codes|earer|asic|st_)|:\/\/|eyJ/i;

/** Replaces secret values (secret-named fields, bearer tokens, JWTs, API keys, URL passwords…) in a log line. */
export function redactValues(line: string): string {
  // Most lines (access lines above all) hold nothing suspicious; one cheap test skips the rest.
  if (!SUSPECT.test(line)) return line;
  return line.replace(VALUE_PATTERN, (match, jsonKey, escapedKey, scheme, urlPrefix, paramPrefix) => {
    if (jsonKey) return `${jsonKey}"${REDACTED}"`;
    if (escapedKey) return `${escapedKey}\\"${REDACTED}\\"`;
    if (scheme) return `${scheme} ${REDACTED}`;
    if (urlPrefix) return `${urlPrefix}${REDACTED}@`;
    if (paramPrefix) return `${paramPrefix}${REDACTED}`;
    if (match.startsWith('bst_')) return `bst_${REDACTED}`;
    return REDACTED;
  });
}
