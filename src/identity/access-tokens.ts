import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { Clock } from '../core/clock.ts';
import { ACCESS_TOKEN_ALGORITHM, type SigningKeys } from './signing-keys.ts';

/** The `typ` header of access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** Header parameters that would let a token name its own key or extensions: refused outright. */
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64'];
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 4096;
const CLOCK_TOLERANCE_SECONDS = 5;

/** What a verified access token says. */
export interface AccessClaims {
  /** User id. */
  sub: string;
  /** Session id. */
  sid: string;
  jti: string;
  /** Expiry, epoch seconds. */
  exp: number;
}

/** Options of {@link AccessTokens}. */
export interface AccessTokensOptions {
  keys: SigningKeys;
  clock: Clock;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  /** Verified tokens kept in memory (0 turns the cache off). */
  cacheSize: number;
}

// 32 base64url characters: 192 bits of the Ed25519 signature, unique to the token.
const CACHE_KEY_LENGTH = 32;

function cacheKey(token: string): string {
  return token.slice(-CACHE_KEY_LENGTH);
}

/**
 * Issues and verifies access tokens: JWTs signed with EdDSA (Ed25519), `typ: at+jwt`, with
 * `iss`, `aud`, `sub`, `sid`, `jti`, `iat` and `exp`. Verification accepts only EdDSA, only our own
 * keys (looked up by `kid`), refuses any header that carries or points to a key, and caches each
 * verified token until it expires, so the hot path is a map lookup. Revocation is checked by the
 * caller per request ({@link SessionRevocations}), never cached here.
 */
export class AccessTokens {
  readonly #options: AccessTokensOptions;
  /**
   * Verified tokens by the last characters of their signature (a short key hashes in a fraction
   * of the time of the whole token); the entry keeps the whole token, which must match exactly.
   */
  readonly #cache = new Map<string, { token: string; claims: AccessClaims }>();

  constructor(options: AccessTokensOptions) {
    this.#options = options;
  }

  /**
   * Signs a token for a session. It expires after the configured lifetime, or when the session
   * must end (`sessionEndsAt`, epoch ms), whichever comes first: no token outlives its session.
   */
  async issue(
    userId: string,
    sessionId: string,
    sessionEndsAt: number = Number.POSITIVE_INFINITY,
  ): Promise<{ token: string; expiresIn: number }> {
    const { keys, clock, issuer, audience } = this.#options;
    const now = Math.floor(clock.now() / 1000);
    const ttlSeconds = Math.max(
      1,
      Math.min(this.#options.ttlSeconds, Math.floor(sessionEndsAt / 1000) - now),
    );
    const active = keys.active;
    const token = await new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, typ: ACCESS_TOKEN_TYPE, kid: active.id })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(userId)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(active.privateKey);
    return { token, expiresIn: ttlSeconds };
  }

  /**
   * From the cache alone: the claims of a token verified before and valid now, null for one that
   * has expired since, undefined for a token not in the cache (then call `verify`).
   */
  cached(token: string): AccessClaims | null | undefined {
    const entry = this.#cache.get(cacheKey(token));
    if (entry === undefined || entry.token !== token) return undefined;
    if (entry.claims.exp + CLOCK_TOLERANCE_SECONDS > this.#options.clock.now() / 1000) return entry.claims;
    this.#cache.delete(cacheKey(token));
    return null;
  }

  /** The token's claims when it is valid now, or null. Never throws for a bad token. */
  async verify(token: string): Promise<AccessClaims | null> {
    const cached = this.cached(token);
    if (cached !== undefined) return cached;
    const claims = await this.#verifyUncached(token);
    if (claims && this.#options.cacheSize > 0) {
      if (this.#cache.size >= this.#options.cacheSize) {
        // Oldest first (insertion order): drop one.
        const oldest = this.#cache.keys().next();
        if (!oldest.done) this.#cache.delete(oldest.value);
      }
      this.#cache.set(cacheKey(token), { token, claims });
    }
    return claims;
  }

  async #verifyUncached(token: string): Promise<AccessClaims | null> {
    if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return null;
    const { keys, clock, issuer, audience } = this.#options;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== ACCESS_TOKEN_ALGORITHM || header.typ !== ACCESS_TOKEN_TYPE) return null;
      if (FORBIDDEN_HEADERS.some((name) => name in header)) return null;
      if (typeof header.kid !== 'string') return null;
      const key = await keys.lookup(header.kid);
      if (!key) return null;
      const { payload } = await jwtVerify(token, key, {
        algorithms: [ACCESS_TOKEN_ALGORITHM],
        typ: ACCESS_TOKEN_TYPE,
        issuer,
        audience,
        currentDate: new Date(clock.now()),
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
      });
      const { sub, sid, jti, exp } = payload as Record<string, unknown>;
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') return null;
      if (typeof exp !== 'number') return null;
      return { sub, sid, jti, exp };
    } catch {
      return null;
    }
  }
}
