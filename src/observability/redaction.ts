/** What replaces a redacted value. */
export const REDACTED = '[REDACTED]';

// Field names whose values are secrets wherever they appear in a log line, at any depth.
const SECRET_KEYS = [
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
];

// Secret fields whose values are objects or arrays: redacted whole when they hold no nested
// object (the shape they have in Bastion's own records).
const SECRET_CONTAINERS = ['credentials', 'backup_codes'];

const KEYS = SECRET_KEYS.map((key) => key.replace(/[-]/g, '\\-')).join('|');

// One pass over each serialized line. Alternatives, in the order the replacer reads them:
//  0 `"credentials":{…}` or `"backup_codes":[…]`;
//  1 `"secret_key":"…"` or `"secret_key":123` in the JSON line itself, at any depth;
//  2 `\"secret_key\":\"…` in JSON that was logged inside a string;
//  3 bearer/basic credentials; 4 URL passwords; 5 query or form parameters;
//  6 JWTs; 7 Bastion API keys.
const VALUE_PATTERN = new RegExp(
  [
    `("(?:${SECRET_CONTAINERS.join('|')})":)(?:\\{[^{}]*\\}|\\[[^\\[\\]]*\\])`,
    `("(?:${KEYS})":)(?:"(?:[^"\\\\]|\\\\.)*"|[^,}\\]\\s]+)`,
    `(\\\\"(?:${KEYS})\\\\":\\s*\\\\")(?:[^"\\\\]|\\\\[^"])*`,
    /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/.source,
    /\b([a-z][a-z0-9+.-]*:\/\/[^:/\s"@\\]*:)[^@\s"/\\]+@/.source,
    /([?&;\s](?:password|passwd|pwd|token|access_token|refresh_token|api_key|apikey|secret|client_secret)=)[^&\s"#\\]+/
      .source,
    /\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/.source,
    /\bbst_[A-Za-z0-9_-]{8,}/.source,
  ].join('|'),
  'gi',
);

// Every alternative of VALUE_PATTERN needs one of these words or marks to match.
const SUSPECT = new RegExp(
  [...SECRET_KEYS, ...SECRET_CONTAINERS, 'pwd=', 'bearer', 'basic', '://', 'eyJ', 'bst_']
    .join('|')
    .replace(/-/g, '\\-'),
  'i',
);

/** Replaces secret values (secret-named fields, bearer tokens, JWTs, API keys, URL passwords…) in a log line. */
export function redactValues(line: string): string {
  // Most lines (access lines above all) hold nothing suspicious; one cheap test skips the rest.
  if (!SUSPECT.test(line)) return line;
  return line.replace(
    VALUE_PATTERN,
    (match, containerKey, jsonKey, escapedKey, scheme, urlPrefix, paramPrefix) => {
      if (containerKey) return `${containerKey}"${REDACTED}"`;
      if (jsonKey) return `${jsonKey}"${REDACTED}"`;
      if (escapedKey) return `${escapedKey}${REDACTED}`;
      if (scheme) return `${scheme} ${REDACTED}`;
      if (urlPrefix) return `${urlPrefix}${REDACTED}@`;
      if (paramPrefix) return `${paramPrefix}${REDACTED}`;
      if (match.startsWith('bst_')) return `bst_${REDACTED}`;
      return REDACTED;
    },
  );
}
