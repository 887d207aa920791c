import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** Cookie holding the console's access token (HttpOnly). */
export const ACCESS_COOKIE = 'bastion_access';
/** Cookie holding the console's refresh token (HttpOnly, sent only to /auth/console). */
export const REFRESH_COOKIE = 'bastion_refresh';
/** Cookie the console's script reads and echoes in the CSRF header (double submit). */
export const CSRF_COOKIE = 'bastion_csrf';
/** Header that must carry the CSRF cookie's value on unsafe requests. */
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The value of one cookie in a Cookie header, or null (no cookie library on the hot path). */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? null : value;
    }
  }
  return null;
}

function originOf(referer: string | undefined): string | null {
  if (referer === undefined) return null;
  try {
    return new URL(referer).origin;
  } catch {
    return null;
  }
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Why a request does not come from this server's own origin or a `CORS_ORIGINS` origin (Origin
 * header, else Referer; a request naming neither is refused), or null. The console's login checks
 * this too: a login form posted from another site must not sign the victim into the attacker's account.
 */
export function originProblem(request: FastifyRequest, allowedOrigins: ReadonlySet<string>): string | null {
  const origin = request.headers.origin ?? originOf(request.headers.referer);
  if (origin === null || origin === undefined) return 'the request names no origin';
  const own = `${request.protocol}://${request.host}`;
  if (origin !== own && !allowedOrigins.has(origin)) return `origin ${origin} is not allowed`;
  return null;
}

/**
 * Why an unsafe request authenticated by the console's cookie must be refused as a possible
 * cross-site request forgery, or null. Besides SameSite=Strict cookies: the request must come
 * from this server's own origin or a `CORS_ORIGINS` origin (Origin header, else Referer; neither
 * is refused), and carry the CSRF cookie's value in `X-CSRF-Token`, which another site can
 * neither read nor set. Safe methods (GET, HEAD, OPTIONS) change nothing and pass.
 */
export function csrfProblem(request: FastifyRequest, allowedOrigins: ReadonlySet<string>): string | null {
  if (SAFE_METHODS.has(request.method)) return null;
  const problem = originProblem(request, allowedOrigins);
  if (problem) return problem;
  const header = request.headers[CSRF_HEADER];
  const cookie = cookieValue(request.headers.cookie, CSRF_COOKIE);
  if (typeof header !== 'string' || cookie === null || !sameSecret(header, cookie)) {
    return 'the CSRF token is missing or wrong';
  }
  return null;
}
