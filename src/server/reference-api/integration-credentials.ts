import Type from 'typebox';
import { BastionError, HttpErrors } from '../../core/errors.ts';

/** Most entries in one integration's credentials (`token` and `headers` included). */
export const MAX_CREDENTIAL_ENTRIES = 50;
/** Largest serialized credentials, bytes of UTF-8. */
export const MAX_CREDENTIALS_BYTES = 16 * 1024;

/** One credential entry other than `token` and `headers`: a flat value, never an object or array. */
export type CredentialValue = string | number | boolean;

/** What the test call uses from an integration's credentials; other entries are kept as given. */
export interface IntegrationCredentials {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  [other: string]: CredentialValue | Record<string, string> | undefined;
}

/**
 * Credentials as the API accepts them (write-only: never in a response): a flat object, so its
 * depth is bounded by the schema itself (a value nested thousands of levels deep is refused by
 * validation, before anything walks or serializes it).
 */
export const Credentials = Type.Object(
  {
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, pattern: '^[\\x21-\\x7e]+$' })),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 8192, pattern: '^[^\\r\\n\\x00]*$' }), {
        maxProperties: 32,
      }),
    ),
  },
  {
    additionalProperties: Type.Union([Type.String({ maxLength: 8192 }), Type.Number(), Type.Boolean()]),
    maxProperties: MAX_CREDENTIAL_ENTRIES,
    propertyNames: Type.String({ minLength: 1, maxLength: 128 }),
    description:
      'Write-only; kept encrypted in the secrets vault. Strings, numbers and booleans, and `headers` ' +
      `(an object of strings); at most ${MAX_CREDENTIAL_ENTRIES} entries and ${MAX_CREDENTIALS_BYTES / 1024} KiB`,
  },
);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
// Framing and routing belong to the HTTP client; letting them be set would break or redirect the call.
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/**
 * The stored text of validated credentials: 400 when a header name is not a valid token or is one
 * the client must set itself, 413 when the whole is larger than {@link MAX_CREDENTIALS_BYTES}.
 */
export function serializeCredentials(credentials: IntegrationCredentials): string {
  for (const name of Object.keys(credentials.headers ?? {})) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name) || RESERVED_HEADERS.has(lower) || lower.startsWith('proxy-')) {
      throw new BastionError(HttpErrors.validation, {
        message: `credentials.headers: ${JSON.stringify(name.slice(0, 64))} is not a header that can be set`,
      });
    }
  }
  const text = JSON.stringify(credentials);
  if (Buffer.byteLength(text, 'utf8') > MAX_CREDENTIALS_BYTES) {
    throw new BastionError(HttpErrors.payloadTooLarge, {
      message: `credentials are larger than ${MAX_CREDENTIALS_BYTES / 1024} KiB`,
    });
  }
  return text;
}

/** Every string in the credentials (values, recursively): what must never be shown back. */
export function secretStrings(credentials: unknown): string[] {
  const found: string[] = [];
  const stack: unknown[] = [credentials];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value.length > 0) found.push(value);
    } else if (typeof value === 'object' && value !== null) {
      stack.push(...Object.values(value));
    }
  }
  // Longest first, so a secret that contains another is removed whole.
  return found.sort((a, b) => b.length - a.length);
}

/** Parses and checks an `http:`/`https:` URL without user info; throws 400 otherwise. */
export function checkIntegrationUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BastionError(HttpErrors.validation, { message: 'url must be an absolute http(s) URL' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BastionError(HttpErrors.validation, { message: 'url must use http or https' });
  }
  if (url.username !== '' || url.password !== '') {
    throw new BastionError(HttpErrors.validation, {
      message: 'url must not contain a user name or password; put them in credentials',
    });
  }
  return url;
}
