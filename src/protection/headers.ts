import type { BastionConfig } from '../config/schema.ts';

/** The kinds of response that get their own security headers. */
export type HeaderProfile = 'api' | 'identity' | 'console' | 'none';

/** Header name → value, computed once at start-up and set on every response of its kind. */
export type HeaderSet = Readonly<Record<string, string>>;

const HSTS = 'max-age=31536000; includeSubDomains';

// An API answers JSON to programs: nothing in it may run, be framed, or be loaded by another site.
const API_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'permissions-policy':
    'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

// The console is a page: its own scripts, styles and API calls only, never framed.
const CONSOLE_HEADERS: Record<string, string> = {
  ...API_HEADERS,
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'same-origin',
};

// Tokens, codes and account data must not be kept by a browser or a shared cache.
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** Headers a route may change through `config.headers` (null leaves one out). */
export type HeaderOverrides = Readonly<Record<string, string | null>>;

function apply(base: Record<string, string>, overrides: HeaderOverrides): HeaderSet {
  const out: Record<string, string> = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (!HEADER_NAME.test(name)) throw new TypeError(`"${name}" is not a valid header name`);
    if (value !== null && /[\r\n]/.test(value))
      throw new TypeError(`the value of header "${name}" has a line break`);
    const key = name.toLowerCase();
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return Object.freeze(out);
}

/**
 * The security header sets, built once from the configuration: API responses, identity
 * responses (the API set plus `Cache-Control: no-store`), console pages (a CSP for a page), and
 * none. HSTS (one year, subdomains) is added in production unless turned off.
 */
export class SecurityHeaders {
  readonly #sets: Record<HeaderProfile, HeaderSet>;

  constructor(config: BastionConfig) {
    const { hsts, headers } = config.protection;
    const transport: Record<string, string> =
      config.env === 'production' && hsts ? { 'strict-transport-security': HSTS } : {};
    const api = apply({ ...API_HEADERS, ...transport }, headers.api);
    this.#sets = {
      api,
      identity: apply({ ...api, ...NO_STORE }, {}),
      console: apply({ ...CONSOLE_HEADERS, ...transport }, headers.console),
      none: Object.freeze({}),
    };
  }

  /** The set of a profile. */
  profile(name: HeaderProfile): HeaderSet {
    return this.#sets[name];
  }

  /**
   * The set for a route: its `config.headers` (a profile name, or changes to the API set), else
   * the identity set under `/auth/`, else the API set. Called once per route at start-up.
   */
  forRoute(url: string, setting: HeaderProfile | HeaderOverrides | undefined): HeaderSet {
    if (typeof setting === 'string') return this.#sets[setting];
    const base = url === '/auth' || url.startsWith('/auth/') ? this.#sets.identity : this.#sets.api;
    return setting === undefined ? base : apply(base, setting);
  }
}
