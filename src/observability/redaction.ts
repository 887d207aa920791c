/** What replaces a redacted value. */
export const REDACTED = '[REDACTED]';

// Field names whose values are secrets wherever they appear in a logged object.
const SECRET_FIELDS = [
  'password',
  'current_password',
  'new_password',
  'passwd',
  'secret',
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
  'credentials',
  'masterKey',
  'master_key',
  'client_secret',
  'backup_codes',
];

function fieldPath(prefix: string, field: string): string {
  const accessor = /^[A-Za-z_$][\w$]*$/.test(field) ? `.${field}` : `["${field}"]`;
  if (prefix) return `${prefix}${accessor}`;
  return accessor.startsWith('.') ? field : accessor;
}

/** pino `redact` paths: secret fields at the top and up to three levels deep. */
export const REDACT_PATHS: string[] = SECRET_FIELDS.flatMap((field) =>
  ['', '*', '*.*', '*.*.*'].map((prefix) => fieldPath(prefix, field)),
);

// One pass over each serialized line catches secrets that slipped into free text (messages,
// error strings, URLs). Alternatives are ordered by how they are replaced below.
const VALUE_PATTERN = new RegExp(
  [
    /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/.source,
    /\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/.source,
    /\bbst_[A-Za-z0-9_-]{8,}/.source,
    /\b([a-z][a-z0-9+.-]*:\/\/[^:/\s"@\\]*:)[^@\s"/\\]+@/.source,
    /([?&;\s](?:password|passwd|pwd|token|access_token|refresh_token|api_key|apikey|secret|client_secret)=)[^&\s"#\\]+/
      .source,
    /(\\?"(?:password|passwd|secret|token|access_token|refresh_token|api_key|client_secret|authorization|cookie)\\?"\s*:\s*\\?")(?:[^"\\]|\\[^"])+/
      .source,
  ].join('|'),
  'gi',
);

/** Replaces secret-looking values (bearer tokens, JWTs, API keys, URL passwords…) in a log line. */
export function redactValues(line: string): string {
  return line.replace(VALUE_PATTERN, (match, scheme, urlPrefix, paramPrefix, jsonPrefix) => {
    if (scheme) return `${scheme} ${REDACTED}`;
    if (urlPrefix) return `${urlPrefix}${REDACTED}@`;
    if (paramPrefix) return `${paramPrefix}${REDACTED}`;
    if (jsonPrefix) return `${jsonPrefix}${REDACTED}`;
    if (match.startsWith('bst_')) return `bst_${REDACTED}`;
    return REDACTED;
  });
}
