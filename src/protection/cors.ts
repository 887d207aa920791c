import type { BastionConfig } from '../config/schema.ts';

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
const ALLOWED_HEADERS = 'authorization, content-type, x-api-key, x-request-id, x-csrf-token, traceparent';
const EXPOSED_HEADERS = 'x-request-id, ratelimit-limit, ratelimit-remaining, ratelimit-reset, retry-after';

/** An origin of `CORS_ORIGINS` as browsers send it: lower case, no trailing slash. */
export function normalizeOrigin(entry: string): string {
  return entry.replace(/\/$/, '').toLowerCase();
}

/** Why an entry of `CORS_ORIGINS` is unusable, or null. */
export function corsOriginProblem(entry: string): string | null {
  if (entry === '*') return null;
  try {
    const url = new URL(entry);
    if (url.origin === 'null' || url.origin !== normalizeOrigin(entry)) {
      return `"${entry}" is not an origin (scheme://host[:port], nothing after it)`;
    }
    return null;
  } catch {
    return `"${entry}" is not an origin (scheme://host[:port])`;
  }
}

/** Headers for one request: the actual response's, or a preflight's. */
export type CorsHeaders = Readonly<Record<string, string>>;

/**
 * CORS from `CORS_ORIGINS`: only exact origins (compared as the browser sends them) get CORS
 * headers, with credentials allowed only for them; `*` (refused in production) allows any origin
 * without credentials; any other origin gets none. Every response that depends on the origin
 * says `Vary: Origin`. The header sets are built once per allowed origin.
 */
export class Cors {
  readonly enabled: boolean;
  readonly #responses = new Map<string, CorsHeaders>();
  readonly #preflights = new Map<string, CorsHeaders>();
  readonly #wildcard: { response: CorsHeaders; preflight: CorsHeaders } | null;
  /** For an origin that is not allowed: only `Vary`. */
  readonly varyOnly: CorsHeaders = Object.freeze({ vary: 'Origin' });

  constructor(config: BastionConfig) {
    const origins = config.security.corsOrigins;
    const { credentials, maxAgeSeconds } = config.protection.cors;
    this.enabled = origins.length > 0;
    const preflightCommon = {
      'access-control-allow-methods': ALLOWED_METHODS,
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': String(maxAgeSeconds),
    };
    for (const entry of origins) {
      if (entry === '*') continue;
      const origin = normalizeOrigin(entry);
      const response: Record<string, string> = {
        'access-control-allow-origin': origin,
        'access-control-expose-headers': EXPOSED_HEADERS,
        vary: 'Origin',
      };
      if (credentials) response['access-control-allow-credentials'] = 'true';
      this.#responses.set(origin, Object.freeze(response));
      this.#preflights.set(origin, Object.freeze({ ...response, ...preflightCommon }));
    }
    if (origins.includes('*')) {
      const response = {
        'access-control-allow-origin': '*',
        'access-control-expose-headers': EXPOSED_HEADERS,
        vary: 'Origin',
      };
      this.#wildcard = {
        response: Object.freeze(response),
        preflight: Object.freeze({ ...response, ...preflightCommon }),
      };
    } else this.#wildcard = null;
  }

  /** The CORS headers of a response to a request from `origin` (the Origin header as sent). */
  response(origin: string): CorsHeaders {
    return this.#responses.get(origin) ?? this.#wildcard?.response ?? this.varyOnly;
  }

  /** The headers of a preflight answer for `origin`. */
  preflight(origin: string): CorsHeaders {
    return this.#preflights.get(origin) ?? this.#wildcard?.preflight ?? this.varyOnly;
  }
}
